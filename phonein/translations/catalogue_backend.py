"""The build backend: setuptools, after compiling the gettext catalogues.

The repository keeps only the ``.po`` sources. Every wheel (and editable install) built
through this backend first writes each ``<language>/LC_MESSAGES/<domain>.po`` beside it
as the ``.mo`` that an installed phonein reads; fuzzy entries are left out, as
``pybabel compile`` does. Everything else is setuptools' own hooks, unchanged.

``pyproject.toml`` names this module with ``backend-path``; it is not part of the
``phonein`` package (the wheel carries only the catalogues from this folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from setuptools import build_meta as _setuptools
from setuptools.build_meta import *  # noqa: F403  (every other hook, as setuptools has it)


def compile_catalogues() -> None:
    """Write the ``.mo`` beside every ``.po`` under this folder."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in sorted(Path(__file__).resolve().parent.glob("*/LC_MESSAGES/*.po")):
        with po.open("rb") as handle:
            catalog = read_po(handle, locale=po.parts[-3], domain=po.stem)
        with po.with_suffix(".mo").open("wb") as handle:
            write_mo(handle, catalog, use_fuzzy=False)


def build_wheel(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    compile_catalogues()
    return str(_setuptools.build_wheel(wheel_directory, config_settings, metadata_directory))


def build_editable(
    wheel_directory: str,
    config_settings: dict[str, Any] | None = None,
    metadata_directory: str | None = None,
) -> str:
    compile_catalogues()
    return str(_setuptools.build_editable(wheel_directory, config_settings, metadata_directory))
