import ast
import os.path as osp
from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def get_version():
    """``__version__`` of mmdyt/version.py, parsed without importing mmdyt
    (which needs torch and the toolboxes installed)."""
    with open(osp.join(HERE, 'mmdyt', 'version.py')) as f:
        tree = ast.parse(f.read(), 'mmdyt/version.py')
    for node in tree.body:
        if (isinstance(node, ast.Assign)
                and any(getattr(target, 'id', None) == '__version__' for target in node.targets)):
            return ast.literal_eval(node.value)
    raise RuntimeError('mmdyt/version.py does not assign __version__')


def read_requirements(path):
    with open(osp.join(HERE, path)) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith('#')]


setup(
    name='mmdyt',
    version=get_version(),
    description='Dynamic Tuning (DyT) and Dyn-Adapter for OpenMMLab',
    long_description=open(osp.join(HERE, 'README.md')).read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['mmdyt', 'mmdyt.*']),
    python_requires='>=3.9',
    install_requires=read_requirements('requirements/runtime.txt'),
    extras_require={
        'tests': read_requirements('requirements/tests.txt'),
        'optional': read_requirements('requirements/optional.txt'),
    },
    license='Apache-2.0',
)
