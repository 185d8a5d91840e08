"""Shared fixtures: one exported standard set per test session (it takes a few seconds)."""

from __future__ import annotations

import pytest

from cad.export import export_set
from cad.object_set import standard_set


@pytest.fixture(scope="session")
def standard_objects():
    return standard_set()


@pytest.fixture(scope="session")
def exported_set(tmp_path_factory, standard_objects):
    out = tmp_path_factory.mktemp("fmbset") / "objects"
    manifest = export_set(standard_objects, out, progress=False)
    return out, manifest
