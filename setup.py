"""The package's compiled part: the switch's flow cache (optional: without a
compiler the switch runs its Python path alone; see vde_ipn/io/switch/fastpath.py)."""
from setuptools import Extension, setup

setup(ext_modules=[Extension("vde_ipn.io.switch._fastpath", ["vde_ipn/io/switch/_fastpath.c"],
                             extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
                                                 "-Wno-missing-field-initializers"],
                             optional=True)])
