"""Write (or check) the README's model zoo table from the configs.

Every config outside ``_base_`` folders starts with a comment line
``# <description>``; this script lists them in README.md between the
``<!-- model-zoo:start -->`` and ``<!-- model-zoo:end -->`` markers.

    python tools/misc/model_zoo.py           # rewrite the table
    python tools/misc/model_zoo.py --check   # exit 1 if README is stale
"""
import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
START, END = '<!-- model-zoo:start -->', '<!-- model-zoo:end -->'
TASKS = {'cls': 'Classification', 'seg': 'Segmentation', 'video': 'Video', 'demo': 'Demo'}


def zoo_configs(root=ROOT):
    """Configs that belong in the table: every ``configs/**/*.py`` outside
    ``_base_`` folders."""
    return sorted(p for p in (root / 'configs').rglob('*.py') if '_base_' not in p.parts)


def description(path):
    """The config's first line without ``# ``; ValueError if it is no comment."""
    first = path.read_text().splitlines()[0] if path.read_text() else ''
    if not first.startswith('# ') or len(first) < 4:
        raise ValueError(f'{path}: the first line must be "# <description>" for the model zoo')
    return first[2:].strip()


def render(root=ROOT):
    lines = []
    for task, title in TASKS.items():
        configs = [p for p in zoo_configs(root) if p.relative_to(root / 'configs').parts[0] == task]
        if not configs:
            continue
        lines += [f'### {title}', '', '| method | config | description |', '| --- | --- | --- |']
        for path in configs:
            rel = path.relative_to(root).as_posix()
            method = path.parent.name
            lines.append(f'| {method} | [{path.stem}]({rel}) | {description(path)} |')
        lines.append('')
    return '\n'.join(lines)


def updated_readme(root=ROOT):
    text = (root / 'README.md').read_text()
    if START not in text or END not in text:
        raise ValueError(f'README.md lacks the {START} / {END} markers')
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    return f'{head}{START}\n{render(root)}\n{END}{tail}'


def main():
    parser = argparse.ArgumentParser(description='README model zoo table')
    parser.add_argument('--check', action='store_true', help='fail if README.md is stale')
    args = parser.parse_args()
    new = updated_readme()
    if args.check:
        if new != (ROOT / 'README.md').read_text():
            sys.exit('README.md model zoo is stale: run python tools/misc/model_zoo.py')
        return
    (ROOT / 'README.md').write_text(new)


if __name__ == '__main__':
    main()
