"""Redis URLs: the Sentinel form parsed and mapped to each client, bad ones refused clearly,
passwords never shown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kombu import Connection

from videogen.errors import ConfigError
from videogen.loading import build_settings
from videogen.queue import celery_app
from videogen.redis_url import SentinelURL, check_redis_url, parse_sentinel_url, safe_url

REPO = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((REPO / "config" / "config.json").read_text())
SECRET = "hunter2"


@pytest.mark.parametrize(
    ("url", "parsed"),
    [
        (
            "redis+sentinel://h1:26379,h2:26380,h3:26381/videogen",
            SentinelURL((("h1", 26379), ("h2", 26380), ("h3", 26381)), "videogen"),
        ),
        (
            "redis+sentinel://:pw@10.0.0.1,10.0.0.2:26390/main/3",
            SentinelURL((("10.0.0.1", 26379), ("10.0.0.2", 26390)), "main", 3, None, "pw"),
        ),
        (
            "redis+sentinel://ops:p%40ss%2Fw%3Ard@s1/my-master_1.x/0/",
            SentinelURL((("s1", 26379),), "my-master_1.x", 0, "ops", "p@ss/w:rd"),
        ),
        (  # an unencoded @ or / in the password: everything up to the last @ is credentials
            "redis+sentinel://:a@b/c@s1:1/m",
            SentinelURL((("s1", 1),), "m", 0, None, "a@b/c"),
        ),
        (
            "redis+sentinel://[::1]:26379,[fe80::2]/m/2",
            SentinelURL((("::1", 26379), ("fe80::2", 26379)), "m", 2),
        ),
    ],
)
def test_sentinel_urls_parse(url, parsed):
    assert parse_sentinel_url(url) == parsed
    assert check_redis_url(url) == url


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"redis+sentinel://:{SECRET}@h1:26379,h2:26379", "master name is missing"),
        (f"redis+sentinel://:{SECRET}@h1:26379/", "master name is missing"),
        (f"redis+sentinel://:{SECRET}@h1:26379,,h2/m", "empty entry between commas"),
        (f"redis+sentinel://:{SECRET}@/m", "sentinel host is missing"),
        (f"redis+sentinel://:{SECRET}@h1:port/m", "'h1:port' has no valid port"),
        (f"redis+sentinel://:{SECRET}@h1:70000/m", "'h1:70000' has no valid port"),
        (f"redis+sentinel://:{SECRET}@h_1!:1/m", "'h_1!' is not a host"),
        (f"redis+sentinel://:{SECRET}@h1/m/zero", "database 'zero'"),
        (f"redis+sentinel://:{SECRET}@h1/m a/0", "master name 'm a'"),
        (f"redis+sentinel://:{SECRET}@h1/m?db=2", "query options"),
        (f"redis+sentinel://{SECRET}@h1/m", "[user]:password@"),
        ("redis+sentinel://user:@h1/m", "password before @ is empty"),
        (f"redis+sentinel://:{SECRET}@[::1/m", "is not [ipv6]:port"),
    ],
)
def test_malformed_sentinel_urls_say_what_is_wrong_without_the_password(url, says):
    with pytest.raises(ConfigError) as caught:
        parse_sentinel_url(url)
    text = str(caught.value)
    assert says in text, text
    assert "redis+sentinel://[[user]:password@]host" in text  # the form to follow
    assert SECRET not in text


@pytest.mark.parametrize(
    "url", ["http://h:6379/0", "127.0.0.1:6379", f"sentinel://:{SECRET}@h:26379", "redis:/h"]
)
def test_unknown_url_forms_are_refused_naming_the_accepted_ones(url):
    with pytest.raises(ConfigError, match=r"redis\+sentinel://") as caught:
        check_redis_url(url)
    assert SECRET not in str(caught.value)


def test_a_bad_url_in_the_config_is_a_config_error_without_the_password():
    with pytest.raises(ConfigError) as caught:
        build_settings(SAMPLE, env={"VIDEOGEN_REDIS_URL": f"redis+sentinel://:{SECRET}@h1"})
    assert "redis_url" in str(caught.value) and "master name is missing" in str(caught.value)
    assert SECRET not in str(caught.value)
    url = "redis+sentinel://s1,s2,s3/videogen"
    assert build_settings(SAMPLE, env={"VIDEOGEN_REDIS_URL": url}).redis == url


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("redis://u:pw@h:1/0", "redis://u:***@h:1/0"),
        ("redis://h:1/0", "redis://h:1/0"),
        ("redis://:pw@h:1/0?password=pw2&db=1", "redis://:***@h:1/0?password=***&db=1"),
        ("redis+sentinel://:pw@h1:1,h2:2/m/0", "redis+sentinel://:***@h1:1,h2:2/m/0"),
        ("redis+sentinel://ops:p/w;x@y@h1/m", "redis+sentinel://ops:***@h1/m"),
        ("redis+sentinel://h1,h2/m", "redis+sentinel://h1,h2/m"),
        ("redis://pw-without-colon@h/0", "redis://***@h/0"),
    ],
)
def test_safe_url_masks_every_password(url, safe):
    assert safe_url(url) == safe


SENTINELS = f"redis+sentinel://:{SECRET}@127.0.0.1:26379,127.0.0.1:26380/videogen/2"


def test_celery_broker_and_backend_on_the_sentinels():
    conf = celery_app(SENTINELS).conf
    urls = f"sentinel://:{SECRET}@127.0.0.1:26379/2;sentinel://:{SECRET}@127.0.0.1:26380/2"
    assert conf.broker_url == urls and conf.result_backend == urls
    for options in (conf.broker_transport_options, conf.result_backend_transport_options):
        assert options["master_name"] == "videogen"
        assert options["visibility_timeout"] > conf.task_time_limit  # celeryconfig's, kept
        assert "password" not in options["sentinel_kwargs"]  # the sentinels get no password
    # kombu reads every sentinel, the master's password and the db from that URL.
    connection = Connection(conf.broker_url, transport_options=conf.broker_transport_options)
    assert connection.transport_cls == "sentinel" and len(connection.alt) == 2
    assert (connection.password, connection.virtual_host) == (SECRET, "2")
    assert SECRET not in connection.as_uri()


def test_celery_result_backend_reads_the_sentinels_and_the_master():
    app = celery_app(SENTINELS)
    backend = app.backend
    assert type(backend).__name__ == "SentinelBackend"
    params = backend.connparams
    assert [(h["host"], h["port"]) for h in params["hosts"]] == [
        ("127.0.0.1", 26379),
        ("127.0.0.1", 26380),
    ]
    assert params["db"] == 2 and params["password"] == SECRET
    assert SECRET not in backend.as_uri()


def test_plain_urls_reach_celery_unchanged():
    conf = celery_app("redis://127.0.0.1:6399/0").conf
    assert conf.broker_url == conf.result_backend == "redis://127.0.0.1:6399/0"
    assert "master_name" not in conf.broker_transport_options
