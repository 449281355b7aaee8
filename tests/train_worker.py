"""`prodgen` with the tests' toy family registered: the entry point torchrun starts in the tests.

    python -m torch.distributed.run --nproc_per_node 2 tests/train_worker.py train --config toy.yaml
"""

import toy_family  # noqa: F401  (importing registers the family)

from prodgen.cli import main

main()
