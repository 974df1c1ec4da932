"""The whole gate as one resumable command: train -> eval x2 -> bench -> decide -> publish."""
