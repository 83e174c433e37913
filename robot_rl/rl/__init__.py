"""Networks, the SAC/RLPD agent, the actor and learner loops, checkpoints."""
