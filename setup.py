from setuptools import find_packages, setup


def read_version() -> str:
    scope: dict = {}
    with open('hicd_mm/version.py') as f:
        exec(f.read(), scope)
    return scope['__version__']


setup(
    name='hicd_mm',
    version=read_version(),
    description='HiCD: change detection in quality-varied image pairs via hierarchical '
    'correlation distillation, as an OpenMMLab (MMSegmentation / Open-CD) plugin',
    packages=find_packages(include=['hicd_mm', 'hicd_mm.*']),
    python_requires='>=3.9',
    license='Apache-2.0',
)
