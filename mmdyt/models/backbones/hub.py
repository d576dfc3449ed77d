"""``pretrained='hf-hub:<org>/<name>[@<revision>]'``: weights from a Hugging
Face Hub repo, e.g. ``hf-hub:timm/vit_base_patch16_224.augreg2_in21k_ft_in1k``,
``hf-hub:timm/vit_base_patch14_dinov2.lvd142m`` or an OpenCLIP repo such as
``hf-hub:laion/CLIP-ViT-B-16-laion2B-s34B-b88K``.

:func:`resolve_checkpoint` turns the spec into a local file, using
``huggingface_hub`` (imported only when a spec is resolved): the local cache
first (``HF_HOME`` / ``HF_HUB_CACHE``), then a download unless
``HF_HUB_OFFLINE`` is set. Offline or unreachable with nothing cached, the
error names the repo, the file names looked for, the cache folder and the
command that fetches the file on a connected machine.
"""
import os

#: What marks a ``pretrained`` string as a Hub repo.
HF_HUB_PREFIX = 'hf-hub:'
#: Weight files tried, in order: timm (``model.safetensors``), OpenCLIP
#: (``open_clip_model.safetensors``, ``open_clip_pytorch_model.bin``) and
#: older transformers / timm uploads (``pytorch_model.bin``).
WEIGHT_FILES = ('model.safetensors', 'open_clip_model.safetensors',
                'open_clip_pytorch_model.bin', 'pytorch_model.bin')


def is_hub_spec(spec):
    """Whether ``spec`` is an ``hf-hub:`` string."""
    return isinstance(spec, str) and spec.startswith(HF_HUB_PREFIX)


def parse_hub_spec(spec):
    """``'hf-hub:<org>/<name>[@<revision>]'`` -> ``(repo_id, revision)``
    (revision None: the repo's default branch)."""
    if not is_hub_spec(spec):
        raise ValueError(f"{spec!r} is not a Hub spec: expected '{HF_HUB_PREFIX}<org>/<name>' "
                         f"or '{HF_HUB_PREFIX}<org>/<name>@<revision>'")
    repo_id, sep, revision = spec[len(HF_HUB_PREFIX):].partition('@')
    parts = repo_id.split('/')
    if len(parts) != 2 or not all(parts) or (sep and not revision):
        raise ValueError(f"pretrained={spec!r} is not a Hub repo: expected '{HF_HUB_PREFIX}"
                         f"<org>/<name>' or '{HF_HUB_PREFIX}<org>/<name>@<revision>', "
                         f"e.g. '{HF_HUB_PREFIX}timm/vit_base_patch16_224.augreg2_in21k_ft_in1k'")
    return repo_id, (revision or None)


def _import_hub(spec):
    try:
        import huggingface_hub
        from huggingface_hub import constants
    except ImportError as error:
        raise ImportError(f'pretrained={spec!r} needs the huggingface_hub package: '
                          'pip install huggingface_hub (or download the weight file '
                          'and give its path)') from error
    return huggingface_hub, constants


def _hub_errors(huggingface_hub):
    """The exception classes, wherever this huggingface_hub version keeps
    them (``huggingface_hub.errors`` or, older, ``huggingface_hub.utils``)."""
    try:
        from huggingface_hub import errors
    except ImportError:  # huggingface_hub < 0.23
        errors = huggingface_hub.utils
    return errors


def _is_offline(constants):
    return bool(getattr(constants, 'HF_HUB_OFFLINE', False))


def download_command(repo_id, revision=None, filename=WEIGHT_FILES[0]):
    """The shell command that puts ``filename`` of ``repo_id`` into the Hub
    cache on a connected machine."""
    rev = f' --revision {revision}' if revision else ''
    return f'hf download {repo_id} {filename}{rev}'


def _not_found(spec, repo_id, revision, constants, reason):
    cache = getattr(constants, 'HF_HUB_CACHE', None)
    home = getattr(constants, 'HF_HOME', None)
    rev = revision or 'main'
    command = download_command(repo_id, revision)
    legacy = command.replace('hf download', 'huggingface-cli download', 1)
    return ValueError(
        f'pretrained={spec!r}: none of {", ".join(WEIGHT_FILES)} of the Hugging Face repo '
        f'{repo_id} (revision {rev}) is in the local Hub cache {cache} (HF_HUB_CACHE, by '
        f'default $HF_HOME/hub; HF_HOME is {home}), and {reason}. On a connected machine, '
        f'fetch it with `{command}` (huggingface_hub < 1.0: `{legacy}`; an OpenCLIP repo has '
        f'open_clip_model.safetensors instead) with the same HF_HOME / HF_HUB_CACHE and '
        'copy the cache folder here, or download the file and give its path as pretrained')


def resolve_checkpoint(spec):
    """The local path of the weights of ``'hf-hub:<org>/<name>[@<revision>]'``.

    Tries :data:`WEIGHT_FILES` in order, in the local cache first, then (unless
    ``HF_HUB_OFFLINE`` is set) with ``hf_hub_download``.

    Raises:
        ValueError: a malformed spec; the repo, revision or every weight file
            missing on the Hub; nothing cached while offline or unreachable
            (the repo, the file names, the cache folder and the download
            command are named).
        ImportError: huggingface_hub is not installed.
    """
    repo_id, revision = parse_hub_spec(spec)
    huggingface_hub, constants = _import_hub(spec)
    for filename in WEIGHT_FILES:
        path = huggingface_hub.try_to_load_from_cache(repo_id, filename, revision=revision)
        if isinstance(path, str) and os.path.isfile(path):
            return path
    if _is_offline(constants):
        raise _not_found(spec, repo_id, revision, constants,
                         'HF_HUB_OFFLINE is set, so nothing is downloaded')
    errors = _hub_errors(huggingface_hub)
    missing_remote = []
    for filename in WEIGHT_FILES:
        try:
            return huggingface_hub.hf_hub_download(repo_id, filename, revision=revision)
        except errors.LocalEntryNotFoundError as error:  # the Hub was not reached
            raise _not_found(spec, repo_id, revision, constants,
                             f'the Hub could not be reached ({error})') from error
        except errors.EntryNotFoundError:  # not in the repo: try the next name
            missing_remote.append(filename)
        except errors.RevisionNotFoundError as error:
            raise ValueError(f'pretrained={spec!r}: the Hugging Face repo {repo_id} has no '
                             f'revision {revision!r} ({error})') from error
        except errors.RepositoryNotFoundError as error:  # GatedRepoError too
            raise ValueError(f'pretrained={spec!r}: the Hugging Face repo {repo_id} does not '
                             'exist or needs a login / accepted licence (hf auth login, '
                             f'HF_TOKEN) ({type(error).__name__}: {error})') from error
        except (OSError, ConnectionError) as error:  # network, HTTP 5xx, disk
            raise _not_found(spec, repo_id, revision, constants,
                             f'downloading failed ({type(error).__name__}: {error})') from error
    raise ValueError(f'pretrained={spec!r}: the Hugging Face repo {repo_id} has none of the '
                     f'weight files {", ".join(missing_remote)} (not a timm / OpenCLIP '
                     'weights repo?); download the file and give its path as pretrained')
