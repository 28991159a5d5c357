"""PEP 517 build backend: setuptools' own, found offline.

pip builds a package in an isolated environment and installs the
backend's requirements there from an index, so with
`requires = ["setuptools"]` an offline `pip install ./clients/python`
fails even though Debian's python3-setuptools is installed. This module
declares no requirement and hands every hook to setuptools.build_meta,
looking for setuptools where the interpreter itself has it (its base
site-packages, which pip's isolation hides) when it is not importable."""

from __future__ import annotations

import site
import sys
import sysconfig


def _expose_setuptools() -> None:
    try:
        import setuptools  # noqa: F401
        return
    except ImportError:
        pass
    places = list(site.getsitepackages())
    for scheme in ("posix_prefix", "deb_system"):
        try:
            places.append(sysconfig.get_paths(scheme, vars={"base": sys.base_prefix})["purelib"])
        except KeyError:
            continue
    places.append("/usr/lib/python3/dist-packages")
    for place in places:
        if place not in sys.path:
            sys.path.append(place)


_expose_setuptools()

from setuptools.build_meta import *  # noqa: E402,F401,F403



# setuptools asks pip for `wheel` as well; it is found like setuptools
# (Debian: python3-wheel), so nothing is to be fetched.
def get_requires_for_build_wheel(config_settings=None):  # type: ignore[no-untyped-def]
    return []


def get_requires_for_build_sdist(config_settings=None):  # type: ignore[no-untyped-def]
    return []


def get_requires_for_build_editable(config_settings=None):  # type: ignore[no-untyped-def]
    return []
