"""``<app> inference deploy``: create or patch the inference server's Kubernetes objects."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from ..errors import UsageError
from ..k8s.manifests import (
    IMAGE_PULL_POLICIES,
    SERVICE_TYPES,
    DeployOptions,
    build_manifests,
    parse_hpa,
    parse_model_pin,
    to_yaml,
)

if TYPE_CHECKING:
    from ..app import HmlApp
    from ..k8s.manifests import Manifest

DEFAULT_WAIT_TIMEOUT = 300.0


def _wait(api: object, manifests: list[Manifest], timeout: float) -> None:
    """Follow the Deployment's rollout; progress on stderr, the outcome on stdout."""
    import time

    from ..k8s.rollout import wait_for_rollout

    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    name, namespace = deployment["metadata"]["name"], deployment["metadata"]["namespace"]
    started = time.monotonic()
    status = wait_for_rollout(
        api, namespace, name, timeout, echo=lambda line: click.echo(line, err=True)
    )
    click.echo(
        f"deployment/{name} rolled out: {status.available}/{status.desired} replicas available "
        f"in {time.monotonic() - started:.1f}s"
    )


def deploy_command(app: HmlApp) -> click.Command:
    @click.command("deploy")
    @click.option("--dry-run", is_flag=True, help="Print the manifests as YAML; send nothing.")
    @click.option(
        "--namespace",
        "-n",
        default=None,
        help=f"Namespace to deploy into (default: the app's, '{app.k8s_namespace}').",
    )
    @click.option(
        "--kubeconfig",
        type=click.Path(dir_okay=False),
        default=None,
        help="kubeconfig file (default $KUBECONFIG or ~/.kube/config; in-cluster inside a pod).",
    )
    @click.option("--context", default=None, help="kubeconfig context (default: the current one).")
    @click.option("--image", default=None, help="Container image (default: the app's image_url).")
    @click.option(
        "--service-type", type=click.Choice(SERVICE_TYPES), default=None, help="Service type."
    )
    @click.option("--replicas", type=click.IntRange(min=0), default=None, help="Pod replicas.")
    @click.option("--ingress-host", default=None, help="Also route this host to the Service.")
    @click.option(
        "--hpa",
        default=None,
        metavar="MIN:MAX[:CPU%]",
        help="Also autoscale between MIN and MAX replicas at a CPU target (default 80%).",
    )
    @click.option(
        "--model-sha256",
        "model_sha256",
        multiple=True,
        metavar="[MODEL=]DIGEST",
        help="Pin the model digest the server accepts (sha256:<hex>, as in x-model-digest); "
        "MODEL= pins one model of several. A model with another digest is refused. Repeatable.",
    )
    @click.option(
        "--image-pull-policy",
        type=click.Choice(IMAGE_PULL_POLICIES),
        default=None,
        help="When the node pulls the image (default: Kubernetes' own, Always for :latest). "
        "IfNotPresent or Never run an image built on the node, in no registry.",
    )
    @click.option(
        "--host-root",
        default=None,
        metavar="PATH",
        help="Mount this node directory read-only into the pods as the bucket root (hostPath, "
        "HML_ROOT=PATH): single-node clusters, or a directory every node shares.",
    )
    @click.option(
        "--connection-limit",
        type=click.IntRange(min=1),
        default=None,
        help="The server's open-connection limit, idle ones included (run-prod's default 1000).",
    )
    @click.option(
        "--channel-timeout",
        type=click.IntRange(min=1),
        default=None,
        metavar="SECONDS",
        help="Close a connection idle this long (run-prod's default 75); keep it above the "
        "idle timeout of the proxy in front.",
    )
    @click.option(
        "--wait",
        is_flag=True,
        help="Wait until the rollout is complete, printing each replica change to stderr; "
        "fail with the reason of a pod that cannot start.",
    )
    @click.option(
        "--timeout",
        type=click.FloatRange(min=1),
        default=None,
        metavar="SECONDS",
        help=f"With --wait: give up after this long (default {DEFAULT_WAIT_TIMEOUT:.0f}s).",
    )
    def deploy(
        dry_run: bool,
        namespace: str | None,
        kubeconfig: str | None,
        context: str | None,
        image: str | None,
        service_type: str | None,
        replicas: int | None,
        ingress_host: str | None,
        hpa: str | None,
        model_sha256: tuple[str, ...],
        image_pull_policy: str | None,
        host_root: str | None,
        connection_limit: int | None,
        channel_timeout: int | None,
        wait: bool,
        timeout: float | None,
    ) -> None:
        """Create or patch the Deployment, Service (and Ingress, HPA) of the inference server.

        Running it again patches what changed and reports the rest as unchanged. With --wait
        it then follows the rollout until every replica runs the new pod template.
        """
        if timeout is not None and not wait:
            raise UsageError("--timeout applies to --wait: add --wait")
        if wait and dry_run:
            raise UsageError("--wait needs a cluster: drop --dry-run or --wait")
        options = DeployOptions(
            namespace=namespace,
            image=image,
            replicas=replicas,
            service_type=service_type,
            ingress_host=ingress_host,
            hpa=parse_hpa(hpa) if hpa else None,
            model_sha256=tuple(parse_model_pin(pin) for pin in model_sha256),
            image_pull_policy=image_pull_policy,
            host_root=host_root,
            connection_limit=connection_limit,
            channel_timeout=channel_timeout,
        )
        manifests = build_manifests(app, options)
        if dry_run:
            click.echo(to_yaml(manifests), nl=False)
            return
        from ..k8s.apply import apply_manifests, connect, server_url

        api = connect(kubeconfig, context)
        try:
            target = manifests[0]["metadata"]["namespace"]
            click.echo(f"deploying {app.name} to {server_url(api)}, namespace {target}", err=True)
            for outcome in apply_manifests(api, manifests):
                click.echo(outcome.line())
            if wait:
                _wait(api, manifests, timeout or DEFAULT_WAIT_TIMEOUT)
        finally:
            api.close()

    return deploy
