"""The drift watch: live answers graded by eval assertions, the rolling score against its baseline."""
