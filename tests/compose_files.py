"""The compose files as Docker Compose reads them: its YAML tags and its merge of an override
file into a base one (used by the tests that check compose.yml and compose.cluster.yml)."""

from __future__ import annotations

from pathlib import Path

import yaml


class Reset:
    """Compose's !reset: the attribute is removed."""


class Override:
    """Compose's !override: the value replaces the attribute instead of merging with it."""

    def __init__(self, value):
        self.value = value


class ComposeLoader(yaml.SafeLoader):
    pass


def _construct(loader: yaml.SafeLoader, node: yaml.Node):
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


ComposeLoader.add_constructor("!reset", lambda loader, node: Reset())
ComposeLoader.add_constructor("!override", lambda loader, node: Override(_construct(loader, node)))


def load_compose(path: Path) -> dict:
    """One compose file, its tags kept as Reset and Override values for merge()."""
    return yaml.load(path.read_text(), Loader=ComposeLoader)  # noqa: S506 (a SafeLoader)


def volume_target(volume) -> str:
    return volume["target"] if isinstance(volume, dict) else volume.split(":")[1]


def merge(base, override, path: tuple[str, ...] = ()):
    """Compose's merge of an override file into a base one (the compose spec's 13-merge.md):
    mappings merge key by key, sequences append, except command, entrypoint and
    healthcheck.test (replaced) and a service's volumes (one entry per target); !reset
    removes, !override replaces."""
    if isinstance(override, Reset):
        return Reset()
    if isinstance(override, Override):
        return override.value
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            result = merge(base.get(key), value, (*path, key))
            if isinstance(result, Reset):
                merged.pop(key, None)
            else:
                merged[key] = result
        return merged
    if isinstance(base, list) and isinstance(override, list):
        if path[-1] in ("command", "entrypoint") or path[-2:] == ("healthcheck", "test"):
            return override
        if path[0] == "services" and path[-1] == "volumes":
            targets = {volume_target(volume) for volume in override}
            return [volume for volume in base if volume_target(volume) not in targets] + override
        return base + override
    return override


def plain(value):
    """A value of one compose file with its tags dropped (an !override's value as is, !reset
    as None): what that file says on its own."""
    if isinstance(value, Override):
        return plain(value.value)
    if isinstance(value, Reset):
        return None
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value
