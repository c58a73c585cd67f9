"""Compile the gettext catalogues into the wheel (the rest of the build is pyproject.toml).

The repository keeps only the .po sources; every build turns each
``phonein/translations/<language>/LC_MESSAGES/<domain>.po`` into the ``.mo`` beside it in
the built package, so an installed phonein reads compiled catalogues. Fuzzy entries are
left out, as ``pybabel compile`` does.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithCatalogues(build_py):
    def run(self) -> None:
        super().run()
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        source = Path(__file__).resolve().parent / "phonein" / "translations"
        target = Path(self.build_lib) / "phonein" / "translations"
        for po in sorted(source.glob("*/LC_MESSAGES/*.po")):
            mo = target / po.relative_to(source).with_suffix(".mo")
            mo.parent.mkdir(parents=True, exist_ok=True)
            with po.open("rb") as handle:
                catalog = read_po(handle, locale=po.parts[-3], domain=po.stem)
            with mo.open("wb") as handle:
                write_mo(handle, catalog, use_fuzzy=False)


setup(cmdclass={"build_py": BuildWithCatalogues})
