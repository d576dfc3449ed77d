import ast
import os
import os.path as osp
import shutil
import sys
import warnings
from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = osp.dirname(osp.abspath(__file__))
# What mim and mmengine (``mmdyt::`` configs) read from ``mmdyt/.mim``, as in
# the OpenMMLab toolboxes.
MIM_FILES = ('configs', 'tools', 'model-index.yml')
MIM_IGNORE = shutil.ignore_patterns('__pycache__', '*.pyc', '.pytest_cache')


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
    """Requirement lines of ``path`` (comments dropped, ``-r other.txt``
    followed, relative to ``path``)."""
    requirements = []
    with open(osp.join(HERE, path)) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line.startswith('-r '):
                requirements += read_requirements(
                    osp.join(osp.dirname(path), line[3:].strip()))
            elif line:
                requirements.append(line)
    return requirements


def _remove(path):
    if osp.islink(path) or osp.isfile(path):
        os.remove(path)
    elif osp.isdir(path):
        shutil.rmtree(path)


def add_mim_extension(mim_path, mode):
    """Put ``MIM_FILES`` into ``mim_path`` (``mmdyt/.mim``), as
    ``add_mim_extension()`` of mmpretrain / mmseg does: ``'symlink'`` for an
    editable install (the checkout's configs stay live), ``'copy'`` for a
    wheel."""
    os.makedirs(mim_path, exist_ok=True)
    for name in MIM_FILES:
        src, dst = osp.join(HERE, name), osp.join(mim_path, name)
        if not osp.exists(src):
            warnings.warn(f'{src} is missing: not in mmdyt/.mim')
            continue
        _remove(dst)
        if mode == 'symlink':
            try:
                os.symlink(osp.relpath(src, mim_path), dst)
                continue
            except OSError:  # no symlinks (Windows without the privilege)
                warnings.warn(f'cannot symlink {dst}: copied instead')
        if osp.isdir(src):
            shutil.copytree(src, dst, ignore=MIM_IGNORE)
        else:
            shutil.copyfile(src, dst)


class BuildPy(build_py):
    """build_py that copies configs/, tools/ and model-index.yml into the
    built package's ``.mim`` (so the wheel carries them) without writing into
    the checkout (whose ``mmdyt/.mim`` holds the editable install's
    symlinks)."""

    def run(self):
        super().run()
        if not getattr(self, 'editable_mode', False):
            add_mim_extension(osp.join(self.build_lib, 'mmdyt', '.mim'), 'copy')


if __name__ == '__main__':
    if {'develop', 'editable_wheel'} & set(sys.argv):  # pip install -e .
        add_mim_extension(osp.join(HERE, 'mmdyt', '.mim'), 'symlink')
    with open(osp.join(HERE, 'README.md')) as f:
        long_description = f.read()
    setup(
        name='mmdyt',
        version=get_version(),
        description='Dynamic Tuning (DyT) and Dyn-Adapter for OpenMMLab',
        long_description=long_description,
        long_description_content_type='text/markdown',
        keywords='computer vision, vision transformer, parameter-efficient fine-tuning, '
        'dynamic tuning, token skipping',
        packages=find_packages(include=['mmdyt', 'mmdyt.*']),
        cmdclass={'build_py': BuildPy},
        python_requires='>=3.9',
        install_requires=read_requirements('requirements/runtime.txt'),
        extras_require={
            'deploy': read_requirements('requirements/deploy.txt'),
            'tests': read_requirements('requirements/tests.txt'),
            'optional': read_requirements('requirements/optional.txt'),
        },
        classifiers=[
            'License :: OSI Approved :: Apache Software License',
            'Operating System :: OS Independent',
            'Programming Language :: Python :: 3',
            'Topic :: Scientific/Engineering :: Artificial Intelligence',
        ],
        license='Apache-2.0',
        zip_safe=False)
