"""The command-line flags tools/train.py and tools/test.py share, and what
they set in the config."""
import os
import os.path as osp

from mmengine.config import DictAction


def add_common_args(parser):
    """``--work-dir``, ``--cfg-options``, ``--launcher`` and both spellings of
    ``--local-rank`` (torch.distributed.launch passes ``--local-rank`` since
    torch 2.0)."""
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, xxx=yyy pairs merged into the config; '
        'a list is key="[a,b]" or key=a,b, nested key="[(a,b),(c,d)]", '
        'quotes needed and no white space')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    return parser


def parse_with_local_rank(parser, argv=None):
    """Parse and export ``LOCAL_RANK`` when the launcher did not."""
    args = parser.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def apply_common_args(cfg, args):
    """Launcher, work dir (CLI > config > config file name) and
    ``--cfg-options`` into ``cfg``."""
    cfg.launcher = args.launcher
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    return cfg
