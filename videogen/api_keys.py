"""Where a backend's API key comes from, and which values are no key at all.

``VIDEOGEN_<NAME>_API_KEY`` first, then the vendor SDK's own variable (``RUNWAYML_API_SECRET``,
``LUMAAI_API_KEY``, ``FAL_KEY``), or the pair of variables a vendor with two credentials uses
(Kling's ``KLING_ACCESS_KEY`` and ``KLING_SECRET_KEY``, joined as ``access:secret``), then the
config file. A placeholder such as ``your_runway_api_key`` counts as no key, and the reason
says so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from pydantic import SecretStr

_PLACEHOLDER = re.compile(
    r"^(your[_-].*|<.*>|\$\{.*\}|changeme|change[_-]me|replace[_-]?me|xxx+|todo|none|null|)$",
    re.IGNORECASE,
)


def is_placeholder(value: str) -> bool:
    """True for values that only stand in for a key (``your_runway_api_key``, ``<key>``, ``""``)."""
    return bool(_PLACEHOLDER.match(value.strip()))


def resolve_key(
    name: str,
    file_value: object,
    vendor_env: tuple[str, ...],
    env: Mapping[str, str],
    pair_env: tuple[str, str] | None = None,
) -> tuple[SecretStr | None, str]:
    """The backend's key and where it came from, or ``None`` and why there is none.

    ``pair_env``: two variables whose values, joined by ``:``, make the key (both must be set).
    """
    for var in (f"VIDEOGEN_{name.upper()}_API_KEY", *vendor_env):
        value = env.get(var, "")
        if value and not is_placeholder(value):
            return SecretStr(value), f"env:{var}"
    if pair_env is not None:
        first, second = (env.get(var, "") for var in pair_env)
        if first and second and not is_placeholder(first) and not is_placeholder(second):
            return SecretStr(f"{first}:{second}"), f"env:{pair_env[0]}+{pair_env[1]}"
    if isinstance(file_value, str) and file_value and not is_placeholder(file_value):
        return SecretStr(file_value), "file"
    pair = [f"{pair_env[0]} with {pair_env[1]}"] if pair_env is not None else []
    tried = ", ".join((f"VIDEOGEN_{name.upper()}_API_KEY", *vendor_env, *pair))
    if isinstance(file_value, str) and file_value:
        # Echoing a placeholder is safe: it matched the placeholder pattern, so it is no key.
        return None, f"the config holds a placeholder ({file_value!r}), not a key; set {tried}"
    return None, f"no api_key in the config and none of {tried} is set"
