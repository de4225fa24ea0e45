"""Config loading: defaults, the shipped etc/gamed.toml, and one clear error per problem."""

import os

import pytest

from gamed.core.config import ConfigError
from gamed.games import GamedConfig, load_config, structure_config
from gamed.core.configdoc import render_default_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_defaults_match_design():
    config = load_config(None)
    assert config.novaglide.listen == "tcp:5555"
    assert config.blockattack.listen == "udp:5557"
    assert (config.uttt.websocket, config.uttt.listen) == ("tcp:5556", "tcp:5558")
    assert (config.rooms.websocket, config.rooms.listen) == ("tcp:8081", "tcp:8082")
    assert config.http.listen == "tcp:8080"
    assert config.accounts.bcrypt_cost == 12
    assert config.novaglide.max_line_length == 65536
    assert config.database.resolved_url().startswith("sqlite:///")


def test_shipped_config_is_the_generated_one_and_loads():
    path = os.path.join(ROOT, "etc", "gamed.toml")
    with open(path) as handle:
        assert handle.read() == render_default_config(), (
            "etc/gamed.toml is stale: python -m gamed.core.configdoc > etc/gamed.toml")
    assert load_config(path) == GamedConfig()


@pytest.mark.parametrize("data, message", [
    ({"http": {"listen": 5}}, "http.listen: expected str"),
    ({"http": {"lissten": "tcp:1"}}, "http: unknown key lissten"),
    ({"nosuch": {}}, "unknown key nosuch"),
    ({"novaglide": {"rate": "fast"}}, "novaglide.rate"),
    ({"accounts": {"bcrypt_cost": 3}}, "accounts.bcrypt_cost"),
    ({"accounts": {"bcrypt_cost": True}}, "accounts.bcrypt_cost"),
    ({"uttt": {"listen": "bogus:12"}}, "uttt.listen: bad endpoint"),
    ({"blockattack": {"listen": "udp:notaport"}}, "blockattack.listen"),
    ({"blockattack": {"listen": "udp:1:color=red"}}, "blockattack.listen"),
    ({"database": {"url": "mysql://x/y"}}, "database.url"),
    ({"logging": {"format": "xml"}}, "logging.format"),
    ({"rooms": {"max_line_length": 0}}, "rooms.max_line_length"),
    ({"accounts": {"session_ttl": -1}}, "accounts.session_ttl: must be positive"),
    ({"accounts": {"address_rate": 0}}, "accounts.address_rate: must be positive"),
    ({"accounts": {"bcrypt_queue_limit": 0}}, "accounts.bcrypt_queue_limit"),
    ({"shutdown": {"grace_period": -3}}, "shutdown.grace_period: must not be negative"),
    ({"novaglide": {"k_factor": -40}}, "novaglide.k_factor: must not be negative"),
    ({"blockattack": {"max_waiting": 0}}, "blockattack.max_waiting: must be positive"),
    ({"uttt": {"ping_interval": 0.5}}, "uttt.ping_interval: must be 0 (off) or at least 2"),
    ({"cluster": {"redis_url": "redis://127.0.0.1/0"}},
     "cluster.redis_url: a cluster needs a postgresql:// database"),
    ({"cluster": {"redis_url": "http://127.0.0.1/0"},
      "database": {"url": "postgresql://u@h/d"}}, "cluster.redis_url: must start with redis://"),
    ({"cluster": {"redis_url": "redis://h/x"}, "database": {"url": "postgresql://u@h/d"}},
     "cluster.redis_url: the database must be a number"),
    ({"cluster": {"redis_url": "redis://h:99999"}, "database": {"url": "postgresql://u@h/d"}},
     "cluster.redis_url: port must be"),
    ({"cluster": {"redis_url": "redis://h", "heartbeat": 5.0, "timeout": 5.0},
      "database": {"url": "postgresql://u@h/d"}}, "cluster.timeout: must be longer"),
    ({"cluster": {"heartbeat": 0}}, "cluster.heartbeat: must be positive"),
])
def test_bad_config_names_the_key(data, message):
    with pytest.raises(ConfigError) as info:
        structure_config(data)
    assert message in str(info.value)


def test_ints_are_accepted_for_floats_and_empty_listen_disables(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[novaglide]\nrate = 50\nlisten = ""\n[blockattack]\n'
                    'listen = "udp:5557:interface=127.0.0.1"\n')
    config = load_config(str(path))
    assert config.novaglide.rate == 50.0 and config.novaglide.listen == ""


def test_unreadable_and_invalid_toml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("x = [")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(str(bad))


def test_a_cluster_on_postgresql_is_accepted_and_names_its_node():
    from gamed.cluster.settings import default_node_name, parse_redis_url

    config = structure_config({"cluster": {"redis_url": "redis://:s%40cret@r1:6380/3"},
                               "database": {"url": "postgresql://u@h/d"}})
    url = parse_redis_url(config.cluster.redis_url)
    assert (url.host, url.port, url.db, url.password) == ("r1", 6380, 3, "s@cret")
    assert "cret" not in url.describe()
    assert default_node_name("tcp:8080:interface=0.0.0.0").endswith(":8080")
    assert ":" not in default_node_name("")
