"""The whole gate as one resumable command: train -> eval (a greedy and a sampled pair) -> bench -> decide -> publish."""
