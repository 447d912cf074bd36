"""The prompt registry (docs/prompts.md): ``render.py`` prompt versions compiled and rendered with
typed variables; ``stage.py`` the stage that gives a request its prompt; ``prefix.py`` whether a
new version keeps the provider's cacheable prefix."""
