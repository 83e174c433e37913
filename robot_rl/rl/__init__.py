"""Learning: the SAC/RLPD agent (``agent``, ``networks``), the acting loop (``actor``), the
learner (``learner``), how they are assembled from a config (``assembly``), the programs
that run them (``learner_process``, ``actor_process``, ``train``, ``supervisor``), rollouts
and recording, offline training and checkpoints."""
