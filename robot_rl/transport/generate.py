"""Regenerate the checked-in gRPC modules from robot_rl_transport.proto.

    python -m robot_rl.transport.generate [--out DIR]

The proto is compiled with the repository root as its include path, so protoc sees it as
``robot_rl/transport/robot_rl_transport.proto`` and writes ``from robot_rl.transport import
robot_rl_transport_pb2`` into the service module: the generated code imports as part of the
package with no rewriting. The only post-processing is a ``# ruff: noqa`` first line, because
generated code follows protoc's style, not ours. The output depends on the grpcio-tools
version (its bundled protoc), so regenerate with the version recorded in the generated files.
"""

from __future__ import annotations

import argparse
from importlib import resources
from pathlib import Path

PROTO = Path("robot_rl/transport/robot_rl_transport.proto")
GENERATED = ("robot_rl_transport_pb2.py", "robot_rl_transport_pb2.pyi", "robot_rl_transport_pb2_grpc.py")
HEADER = "# ruff: noqa\n"
REPO_ROOT = Path(__file__).resolve().parents[2]


def generate(out_root: Path = REPO_ROOT) -> list[Path]:
    """Compile the proto into ``out_root/robot_rl/transport/`` and return the files written."""
    from grpc_tools import protoc  # imported here: only needed to regenerate, not to run

    out_dir = out_root / PROTO.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{REPO_ROOT}",
        f"-I{well_known}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        str(PROTO),
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed: {' '.join(args)}")
    written = [out_dir / name for name in GENERATED]
    for path in written:
        text = path.read_text(encoding="utf-8")
        if not text.startswith(HEADER):
            path.write_text(HEADER + text, encoding="utf-8")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=REPO_ROOT,
                        help="root to write robot_rl/transport/*_pb2*.py under (default: this checkout)")
    args = parser.parse_args()
    for path in generate(args.out):
        print(path)


if __name__ == "__main__":
    main()
