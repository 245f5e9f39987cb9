"""`ship kubeconfig ENV`: a kubeconfig for the deployer of ENV, minted with the caller's rights.

Run by someone who may create tokens for the ServiceAccount (a cluster admin, once `ship rbac ENV`
is applied); the result goes into the GitHub environment's KUBECONFIG secret. Never writes a file.
"""

from __future__ import annotations

from pathlib import Path

from pipeline import yamlsafe
from pipeline.commands.text import Text
from pipeline.context import Context
from pipeline.kube import access
from pipeline.kube.credentials import load_kubeconfig


def kubeconfig(ctx: Context, env_name: str, service_account: str, seconds: int) -> Text:
    env = ctx.config.env(env_name)
    conf = load_kubeconfig(None, env.context)
    token, granted = access.mint(ctx.cluster(env), env.namespace, service_account, seconds)
    ca = Path(conf.ssl_ca_cert).read_bytes() if getattr(conf, "ssl_ca_cert", None) else None
    name = f"ship-{env.name}"
    server = access.Server(conf.host, ca, getattr(conf, "tls_server_name", None))
    body = access.kubeconfig(
        name, server, env.namespace, f"{service_account}@{env.namespace}", token
    )
    ctx.progress(
        f"minted a token of ServiceAccount/{env.namespace}/{service_account} "
        f"valid for {granted // 3600}h"
    )
    return Text(yamlsafe.dumps(body).rstrip("\n"))
