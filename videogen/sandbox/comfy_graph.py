"""ComfyUI API-format graphs: what ComfyUI checks on ``POST /prompt``, and what the sandbox reads.

A graph is ``{node_id: {"class_type": ..., "inputs": {...}}}``; a linked input is ``[source_node_id,
index]``. Validation answers in ComfyUI's own shapes (``execution.py`` ``validate_prompt``):
``invalid_prompt`` for an unknown or missing class type, ``prompt_no_outputs``, and
``prompt_outputs_failed_validation`` with per-node ``node_errors``. Only the inputs the sandbox is
sure of are checked, so that a graph real ComfyUI accepts is not refused here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CHECKPOINTS = (
    "svd_xt_1_1.safetensors",
    "svd_xt.safetensors",
    "svd.safetensors",
    "sd_xl_base_1.0.safetensors",
)
VIDEO_OUTPUT_NODES = ("SaveVideo", "VHS_VideoCombine", "SaveAnimatedWEBP")
OUTPUT_NODES = frozenset({*VIDEO_OUTPUT_NODES, "SaveImage", "PreviewImage"})

# Known node classes and the inputs the sandbox insists on (a subset of ComfyUI's required inputs).
REQUIRED_INPUTS: dict[str, tuple[str, ...]] = {
    "ImageOnlyCheckpointLoader": ("ckpt_name",),
    "CheckpointLoaderSimple": ("ckpt_name",),
    "LoadImage": ("image",),
    "SVD_img2vid_Conditioning": (
        "clip_vision",
        "init_image",
        "vae",
        "width",
        "height",
        "video_frames",
        "fps",
    ),
    "VideoLinearCFGGuidance": ("model", "min_cfg"),
    "KSampler": ("model", "positive", "negative", "latent_image", "seed", "steps", "cfg"),
    "VAEDecode": ("samples", "vae"),
    "CreateVideo": ("images", "fps"),
    "SaveVideo": ("video", "filename_prefix"),
    "SaveAnimatedWEBP": ("images", "filename_prefix", "fps"),
    "VHS_VideoCombine": ("images", "frame_rate", "filename_prefix", "format"),
    "CLIPTextEncode": ("text", "clip"),
    "EmptyLatentImage": ("width", "height", "batch_size"),
    "ImageScale": ("image", "upscale_method", "width", "height", "crop"),
    "SaveImage": ("images", "filename_prefix"),
    "PreviewImage": ("images",),
}
_CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("ImageOnlyCheckpointLoader", "ckpt_name"): CHECKPOINTS,
    ("CheckpointLoaderSimple", "ckpt_name"): CHECKPOINTS,
    ("SaveVideo", "format"): ("auto", "mp4"),
    ("SaveVideo", "codec"): ("auto", "h264"),
}
# Numeric bounds from ComfyUI's node definitions.
_RANGES: dict[tuple[str, str], tuple[float, float]] = {
    ("SVD_img2vid_Conditioning", "width"): (16, 16384),
    ("SVD_img2vid_Conditioning", "height"): (16, 16384),
    ("SVD_img2vid_Conditioning", "video_frames"): (1, 4096),
    ("SVD_img2vid_Conditioning", "fps"): (1, 1024),
    ("KSampler", "seed"): (0, 0xFFFFFFFFFFFFFFFF),
    ("KSampler", "steps"): (1, 10000),
    ("EmptyLatentImage", "width"): (16, 16384),
    ("EmptyLatentImage", "height"): (16, 16384),
}
_SVD_DEFAULTS = {"width": 1024, "height": 576, "video_frames": 25, "fps": 6}


def error(kind: str, message: str, details: str = "") -> dict[str, Any]:
    """ComfyUI's ``error`` member: ``{"type", "message", "details", "extra_info"}``."""
    return {"type": kind, "message": message, "details": details, "extra_info": {}}


def _input_error(kind: str, message: str, name: str, details: str, value: Any) -> dict[str, Any]:
    extra = {"input_name": name, "input_config": None, "received_value": value}
    return {"type": kind, "message": message, "details": details, "extra_info": extra}


def output_ids(graph: dict[str, Any]) -> list[str]:
    """Ids of the graph's output nodes, in graph order."""
    return [node_id for node_id, node in graph.items() if node["class_type"] in OUTPUT_NODES]


def validate(graph: Any, has_input: Callable[[str], bool]) -> dict[str, Any] | None:
    """The 400 body ComfyUI would answer for this graph, or ``None`` if it is valid.

    Args:
        graph: The ``prompt`` member of the request.
        has_input: Whether an uploaded input file of that name exists (for ``LoadImage``).
    """
    structural = _structure_error(graph)
    if structural is not None:
        return {"error": structural, "node_errors": {}}
    outputs = output_ids(graph)
    if not outputs:
        return {"error": error("prompt_no_outputs", "Prompt has no outputs"), "node_errors": {}}
    node_errors = {}
    for node_id, node in graph.items():
        errors = _node_errors(node, graph, has_input)
        if errors:
            node_errors[node_id] = {
                "errors": errors,
                "dependent_outputs": outputs,
                "class_type": node["class_type"],
            }
    if not node_errors:
        return None
    details = "\n".join(
        f"{e['message']}: {e['details']}" for n in node_errors.values() for e in n["errors"]
    )
    failed = error("prompt_outputs_failed_validation", "Prompt outputs failed validation", details)
    return {"error": failed, "node_errors": node_errors}


def _structure_error(graph: Any) -> dict[str, Any] | None:
    if not isinstance(graph, dict):
        return error("invalid_prompt", "Cannot execute because the prompt is not an object.")
    for node_id, node in graph.items():
        if not isinstance(node, dict) or "class_type" not in node:
            message = "Cannot execute because a node is missing the class_type property."
            return error("invalid_prompt", message, f"Node ID '#{node_id}'")
        if node["class_type"] not in REQUIRED_INPUTS:
            message = f"Cannot execute because node {node['class_type']} does not exist."
            return error("invalid_prompt", message, f"Node ID '#{node_id}'")
        if not isinstance(node.get("inputs", {}), dict):
            return error(
                "invalid_prompt", "Cannot execute because node inputs are not an object.", node_id
            )
    return None


def _node_errors(
    node: dict[str, Any], graph: dict[str, Any], has_input: Callable[[str], bool]
) -> list[Any]:
    class_type, inputs = node["class_type"], node.get("inputs", {})
    errors = [
        _input_error("required_input_missing", "Required input is missing", name, name, None)
        for name in REQUIRED_INPUTS[class_type]
        if name not in inputs
    ]
    for name, value in inputs.items():
        problem = _input_problem(class_type, name, value, graph, has_input)
        if problem is not None:
            errors.append(problem)
    return errors


def _input_problem(
    class_type: str, name: str, value: Any, graph: dict[str, Any], has_input: Callable[[str], bool]
) -> dict[str, Any] | None:
    if isinstance(value, list):
        return _link_problem(name, value, graph)
    choices = _CHOICES.get((class_type, name))
    if choices is not None and value not in choices:
        details = f"{name}: '{value}' not in {list(choices)}"
        return _input_error("value_not_in_list", "Value not in list", name, details, value)
    bounds = _RANGES.get((class_type, name))
    if bounds is not None:
        return _range_problem(name, value, bounds)
    if class_type == "LoadImage" and name == "image" and not has_input(input_name(value)):
        details = f"{name} - Invalid image file: {value}"
        return _input_error(
            "custom_validation_failed", "Custom validation failed for node", name, details, value
        )
    return None


def _link_problem(name: str, value: list[Any], graph: dict[str, Any]) -> dict[str, Any] | None:
    if len(value) != 2 or not isinstance(value[0], str) or not isinstance(value[1], int):
        message = "Bad linked input, must be a length-2 list of [string, int]"
        return _input_error("bad_linked_input", message, name, f"{name}: {value}", value)
    if value[0] not in graph:
        message = "Bad linked input, the linked node does not exist"
        return _input_error("bad_linked_input", message, name, f"{name}: node '{value[0]}'", value)
    return None


def _range_problem(name: str, value: Any, bounds: tuple[float, float]) -> dict[str, Any] | None:
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int | float):
        return _input_error(
            "invalid_input_type", "Failed to convert an input value to a number", name, name, value
        )
    if value < low:
        details = f"{name}, {value} smaller than min of {low:g}"
        return _input_error(
            "value_smaller_than_min", "Value smaller than min", name, details, value
        )
    if value > high:
        details = f"{name}, {value} bigger than max of {high:g}"
        return _input_error("value_bigger_than_max", "Value bigger than max", name, details, value)
    return None


def input_name(value: Any) -> str:
    """An input file reference without ComfyUI's optional ``" [input]"`` annotation."""
    text = str(value)
    return text[: -len(" [input]")] if text.endswith(" [input]") else text


# -- what the sandbox reads from a valid graph -----------------------------------------------------
@dataclass(frozen=True)
class GraphInfo:
    """What a valid graph asks for, as far as the sandbox's fake execution is concerned."""

    frames: int
    fps: float
    width: int
    height: int
    seed: int | None
    prompt: str
    checkpoint: str | None
    output_id: str | None
    """The video output node whose file the history lists (``None``: the graph saves no video)."""
    output_class: str | None
    filename_prefix: str
    outputs: list[str]

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps


def _nodes(graph: dict[str, Any], class_type: str) -> list[tuple[str, dict[str, Any]]]:
    return [
        (node_id, node.get("inputs", {}))
        for node_id, node in graph.items()
        if node["class_type"] == class_type
    ]


def _number(value: Any, default: float) -> float:
    return (
        float(value)
        if isinstance(value, int | float) and not isinstance(value, bool) and value > 0
        else default
    )


def _linked_from(inputs: dict[str, Any], name: str) -> str | None:
    value = inputs.get(name)
    return value[0] if isinstance(value, list) and value else None


def _output_fps(graph: dict[str, Any], svd_fps: float) -> float:
    """The saved video's frame rate: the save stage's setting wins over SVD's conditioning fps."""
    for class_type, name in (
        ("CreateVideo", "fps"),
        ("VHS_VideoCombine", "frame_rate"),
        ("SaveAnimatedWEBP", "fps"),
    ):
        for _, inputs in _nodes(graph, class_type):
            if isinstance(inputs.get(name), int | float):
                return _number(inputs[name], svd_fps)
    return svd_fps


def _seed_and_prompt(graph: dict[str, Any], svd_id: str | None) -> tuple[int | None, str]:
    samplers = _nodes(graph, "KSampler")
    # The SVD sampler's seed is the video's seed; a text-to-image stage may have its own sampler.
    chosen = next(
        (inputs for _, inputs in samplers if _linked_from(inputs, "positive") == svd_id), None
    )
    if chosen is None and samplers:
        chosen = samplers[0][1]
    seed = chosen.get("seed") if chosen else None
    positive_ids = {_linked_from(inputs, "positive") for _, inputs in samplers}
    texts = [
        inputs.get("text")
        for node_id, inputs in _nodes(graph, "CLIPTextEncode")
        if node_id in positive_ids
    ]
    texts = texts or [inputs.get("text") for _, inputs in _nodes(graph, "CLIPTextEncode")][:1]
    prompt = " | ".join(text for text in texts if isinstance(text, str))
    return (seed if isinstance(seed, int) and not isinstance(seed, bool) else None), prompt


def _checkpoint(graph: dict[str, Any]) -> str | None:
    for class_type in ("ImageOnlyCheckpointLoader", "CheckpointLoaderSimple"):
        for _, inputs in _nodes(graph, class_type):
            return str(inputs.get("ckpt_name"))
    return None


def describe(graph: dict[str, Any]) -> GraphInfo:
    """Read a validated graph: video size and length, seed, prompt text and the output node."""
    svd = _nodes(graph, "SVD_img2vid_Conditioning")
    svd_id, svd_inputs = svd[0] if svd else (None, {})
    size = {key: _number(svd_inputs.get(key), default) for key, default in _SVD_DEFAULTS.items()}
    seed, prompt = _seed_and_prompt(graph, svd_id)
    videos = [
        node_id
        for node_id in output_ids(graph)
        if graph[node_id]["class_type"] in VIDEO_OUTPUT_NODES
    ]
    output_id = videos[0] if videos else None
    output: dict[str, Any] = graph[output_id] if output_id else {"class_type": None}
    prefix = output.get("inputs", {}).get("filename_prefix", "ComfyUI")
    return GraphInfo(
        frames=int(size["video_frames"]),
        fps=_output_fps(graph, size["fps"]),
        width=int(size["width"]),
        height=int(size["height"]),
        seed=seed,
        prompt=prompt,
        checkpoint=_checkpoint(graph),
        output_id=output_id,
        output_class=output["class_type"],
        filename_prefix=prefix if isinstance(prefix, str) and prefix else "ComfyUI",
        outputs=output_ids(graph),
    )
