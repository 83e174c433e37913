"""Actor ⇄ learner transport over gRPC: steps stream to the learner, policy weights back.

Import from the submodules (``arrays``, ``server``, ``client``); this package module stays
empty so ``python -m robot_rl.transport.generate`` works even when the generated code is
missing or stale.
"""
