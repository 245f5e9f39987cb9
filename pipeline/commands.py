"""What each CLI command does, end to end, composed from the pipeline's modules.

The CLI parses and prints; this module loads the configuration, wires the real adapters
(git, registry, build engine, cluster) and runs the steps in order.
"""

from __future__ import annotations

from typing import Callable

from pipeline import build as build_mod, config, release as release_mod, sync as sync_mod
from pipeline.gitrepo import GitRepo
from pipeline.registry import Registry

Progress = Callable[[str], None]


def release(env_name: str, app_name: str | None, *, image: str | None = None, sync: bool = True, push: bool = True,
            allow_dirty: bool = False, progress: Progress = lambda _m: None) -> release_mod.ReleaseResult:
    cfg = config.load()
    env, app = cfg.env(env_name), cfg.app(app_name)
    repo = GitRepo(cfg.root)
    if not allow_dirty:
        dirty = repo.dirty_paths()
        if dirty:
            from pipeline.errors import GitError

            raise GitError(f"working tree has uncommitted changes ({', '.join(dirty[:3])}); commit them first, "
                           "or pass --allow-dirty")
    if image:
        registry = Registry(cfg.registry)
        try:
            pinned = str(release_mod.check_image(registry, image))
        finally:
            registry.close()
    else:
        pinned = str(build_mod.build(cfg, app, allow_dirty=allow_dirty, progress=progress).image)
    rel = release_mod.new_release(cfg, app, env, pinned, repo.last_change(str(app.path)), repo.author())
    result = release_mod.write_release(cfg, app, env, rel, push=push, progress=progress)
    if sync:
        result.sync = sync_mod.sync(cfg, env, progress=progress)
    return result


def sync(env_name: str, options, lock_options, progress: Progress = lambda _m: None):
    cfg = config.load()
    return sync_mod.sync(cfg, cfg.env(env_name), options, lock_options, progress)
