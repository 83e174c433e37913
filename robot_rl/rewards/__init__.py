"""Reward models: camera frames (and the task's text) in, per-frame progress
and success probability out; the reward composer that turns them into RL rewards; and
the metrics they are judged by before they are trusted (VOC, Kendall τ, F1, AUROC)."""
