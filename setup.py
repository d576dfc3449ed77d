import os.path as osp

from setuptools import find_packages, setup

HERE = osp.dirname(osp.abspath(__file__))


def read_requirements(path):
    with open(osp.join(HERE, path)) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith('#')]


setup(
    name='mmdyt',
    version='0.1.0',
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
