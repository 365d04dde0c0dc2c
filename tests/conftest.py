"""Test collection: the light install (no PyTorch) skips the learned features' modules."""

import importlib.util

#: Test modules that exercise the mask networks, the GAN and their training: they need the
#: ``learned`` extra (``pip install 'inpcodec[learned]'``; the dev extra includes it).
LEARNED_TESTS = ["test_gan.py", "test_learned.py", "test_training.py", "test_tree_map.py"]

collect_ignore = [] if importlib.util.find_spec("torch") else LEARNED_TESTS
