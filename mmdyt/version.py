"""mmdyt's version: the one place it is written (setup.py reads this file)."""

__version__ = '0.2.0'


def parse_version_info(version_str):
    """``'0.2.0'`` -> ``(0, 2, 0)``; a pre-release part stays a string,
    ``'0.3.0rc1'`` -> ``(0, 3, 0, 'rc1')``."""
    version_info = []
    for part in version_str.split('.'):
        if part.isdigit():
            version_info.append(int(part))
        elif 'rc' in part:
            number, rc = part.split('rc', 1)
            version_info.extend([int(number), f'rc{rc}'])
        else:
            version_info.append(part)
    return tuple(version_info)


version_info = parse_version_info(__version__)

__all__ = ['__version__', 'version_info']
