"""``<app> inference deploy``: create or patch the inference server's Kubernetes objects, and
run a canary of another model version beside it (``--canary``, ``--promote``, ``--abort-canary``;
``inference promote`` is ``deploy --promote``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from ..dsl.config import AppSpec
from ..errors import UsageError
from ..k8s.manifests import (
    IMAGE_PULL_POLICIES,
    SERVICE_TYPES,
    DeployOptions,
    deployment_config,
    dns_label,
    parse_hpa,
    parse_model_pin,
    parse_model_version,
    parse_secret_key,
    render_manifests,
    to_yaml,
)

if TYPE_CHECKING:
    from ..app import HmlApp
    from ..k8s.canary import LiveCanary
    from ..k8s.manifests import Manifest

DEFAULT_WAIT_TIMEOUT = 300.0
DEFAULT_WEIGHT = 10


def _wait(api: object, namespace: str, name: str, timeout: float) -> None:
    """Follow the Deployment's rollout; progress on stderr, the outcome on stdout."""
    import time

    from ..k8s.rollout import wait_for_rollout

    started = time.monotonic()
    status = wait_for_rollout(
        api, namespace, name, timeout, echo=lambda line: click.echo(line, err=True)
    )
    click.echo(
        f"deployment/{name} rolled out: {status.available}/{status.desired} replicas available "
        f"in {time.monotonic() - started:.1f}s"
    )


def _cluster_options(namespace_help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """--namespace/-n, --kubeconfig and --context: where a command finds the cluster."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn = click.option(
            "--context", default=None, help="kubeconfig context (default: the current one)."
        )(fn)
        fn = click.option(
            "--kubeconfig",
            type=click.Path(dir_okay=False),
            default=None,
            help="kubeconfig file (default $KUBECONFIG or ~/.kube/config; in-cluster inside a "
            "pod).",
        )(fn)
        return click.option("--namespace", "-n", default=None, help=namespace_help)(fn)

    return decorate


def deploy_command(app: HmlApp) -> click.Command:
    @click.command("deploy")
    @click.option("--dry-run", is_flag=True, help="Print the manifests as YAML; send nothing.")
    @_cluster_options(f"Namespace to deploy into (default: the app's, '{app.k8s_namespace}').")
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
        "--model",
        "models",
        multiple=True,
        metavar="[MODEL=]REF",
        help="What the pods serve instead of what the app loads (run-prod --model): a "
        "published version, pinned with its digest when the pods' bucket is readable here, "
        "or 'latest' or an alias such as 'production', which the pods follow (HML_MODELS; "
        "reloaded when it moves, see --model-poll-seconds). Repeatable.",
    )
    @click.option(
        "--model-poll-seconds",
        type=click.FloatRange(min=0),
        default=None,
        metavar="SECONDS",
        help="How often the pods check whether a model served by 'latest' or an alias moved "
        "(HML_MODEL_POLL_SECONDS; run-prod's default 30; 0: only on POST /-/reload).",
    )
    @click.option(
        "--admin-token-secret",
        default=None,
        metavar="SECRET[:KEY]",
        help="Enable POST /-/reload: the pods' HML_ADMIN_TOKEN is taken from this Kubernetes "
        "Secret's KEY (default 'token'). Give the Secret's name, never the token: `kubectl "
        "create secret generic SECRET --from-literal=token=...`.",
    )
    @click.option(
        "--canary",
        default=None,
        metavar="[MODEL=]REF",
        help="Also run a canary Deployment serving this model version beside the stable one; "
        "'latest' or an alias is resolved here to the version (and digest) it names now, "
        "which the canary pins.",
    )
    @click.option(
        "--weight",
        type=click.IntRange(1, 99),
        default=None,
        metavar="PERCENT",
        help=f"With --canary: the share of requests it should answer (default {DEFAULT_WEIGHT}); "
        "exact through an Ingress, else by splitting the replicas.",
    )
    @click.option(
        "--promote",
        is_flag=True,
        help="Finish the canary: roll the stable Deployment to the canary's version, wait for "
        "it, then delete the canary.",
    )
    @click.option(
        "--abort-canary",
        is_flag=True,
        help="Remove the canary and give the stable Deployment its full replica count back.",
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
        models: tuple[str, ...],
        model_poll_seconds: float | None,
        admin_token_secret: str | None,
        canary: str | None,
        weight: int | None,
        promote: bool,
        abort_canary: bool,
        wait: bool,
        timeout: float | None,
    ) -> None:
        """Create or patch the Deployment, Service (and Ingress, HPA) of the inference server.

        Running it again patches what changed and reports the rest as unchanged. With --wait
        it then follows the rollout until every replica runs the new pod template. --canary
        runs another model version beside it; --promote or --abort-canary finishes that.
        """
        if timeout is not None and not (wait or promote):
            raise UsageError("--timeout applies to --wait and --promote: add --wait")
        if wait and dry_run:
            raise UsageError("--wait needs a cluster: drop --dry-run or --wait")
        if weight is not None and canary is None:
            raise UsageError("--weight applies to --canary: add --canary [MODEL=]REF")
        token_secret = (
            parse_secret_key(admin_token_secret) if admin_token_secret is not None else None
        )
        if promote or abort_canary:
            given = [
                flag
                for flag, value in (
                    ("--promote", promote),
                    ("--abort-canary", abort_canary),
                    ("--canary", canary),
                    ("--image", image),
                    ("--replicas", replicas),
                    ("--model", models),
                    ("--model-sha256", model_sha256),
                    ("--model-poll-seconds", model_poll_seconds is not None),
                    ("--admin-token-secret", admin_token_secret is not None),
                )
                if value not in (None, False, ())
            ]
            if len(given) > 1:
                raise UsageError(
                    f"{' and '.join(given)} do not go together: --promote and --abort-canary "
                    "finish the running canary with the settings it was deployed with"
                )
            _finish_canary(
                app, namespace, kubeconfig, context, dry_run, wait, timeout, promote=promote
            )
            return
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
            models=tuple(parse_model_version(m) for m in models),
            canary=parse_model_version(canary, "--canary") if canary else None,
            weight=weight or DEFAULT_WEIGHT,
            model_poll_seconds=model_poll_seconds,
            admin_token_secret=token_secret,
        )
        manifests = render_manifests(AppSpec.of(app), options)
        from ..k8s.canary import describe_canary

        note = describe_canary(manifests)
        if note:
            click.echo(note, err=True)
        if dry_run:
            click.echo(to_yaml(manifests), nl=False)
            return
        _deploy(app, manifests, kubeconfig, context, wait, timeout or DEFAULT_WAIT_TIMEOUT)

    return deploy


def promote_command(app: HmlApp) -> click.Command:
    """``inference promote``: ``inference deploy --promote`` as a command of its own."""

    @click.command("promote")
    @click.option(
        "--dry-run",
        is_flag=True,
        help="Print the stable Deployment as it would be promoted, and what would be deleted.",
    )
    @_cluster_options(f"Namespace of the canary (default: the app's, '{app.k8s_namespace}').")
    @click.option(
        "--timeout",
        type=click.FloatRange(min=1),
        default=None,
        metavar="SECONDS",
        help=f"Give up waiting for the stable rollout after this long (default "
        f"{DEFAULT_WAIT_TIMEOUT:.0f}s); the canary is kept then.",
    )
    def promote(
        dry_run: bool,
        namespace: str | None,
        kubeconfig: str | None,
        context: str | None,
        timeout: float | None,
    ) -> None:
        """Finish the running canary: roll the stable Deployment to the canary's version (by
        moving the alias its pods follow, if they follow one), wait for it, then delete the
        canary (the same as `inference deploy --promote`)."""
        _finish_canary(app, namespace, kubeconfig, context, dry_run, True, timeout, promote=True)

    return promote


def _deploy(
    app: HmlApp,
    manifests: list[Manifest],
    kubeconfig: str | None,
    context: str | None,
    wait: bool,
    timeout: float,
) -> None:
    """Apply ``manifests``; with a canary, its Deployment first (and, with --wait, only once it
    is ready the rest, so that the stable shrinks and the Ingress turns to it after that)."""
    from ..k8s.apply import apply_manifests, connect, server_url

    deployments = [m for m in manifests if m["kind"] == "Deployment"]
    stable = deployments[-1]  # a canary's Deployment comes first
    namespace = stable["metadata"]["namespace"]
    cut = manifests.index(stable)
    phases = [manifests[:cut], manifests[cut:]] if cut else [manifests]
    api = connect(kubeconfig, context)
    try:
        click.echo(f"deploying {app.name} to {server_url(api)}, namespace {namespace}", err=True)
        for phase in phases:
            for outcome in apply_manifests(api, phase):
                click.echo(outcome.line())
            if wait:
                _wait(api, namespace, phase[0]["metadata"]["name"], timeout)
        if not cut:
            _note_canary(api, namespace, stable["metadata"]["name"])
    finally:
        api.close()


def _note_canary(api: object, namespace: str, stable: str) -> None:
    """Say so when a canary still runs beside the Deployment just applied."""
    from ..k8s.canary import find_canary
    from ..k8s.errors import KubernetesError

    try:
        live = find_canary(api, namespace, stable)
    except KubernetesError as exc:  # a canary this command did not make: say it, deploy stands
        click.echo(f"note: {exc}", err=True)
        return
    if live is not None:
        click.echo(
            f"note: {live.line()} still runs beside it: finish it with "
            "`inference deploy --promote` or remove it with `--abort-canary`",
            err=True,
        )


def _connect_to_canary(
    app: HmlApp, namespace: str | None, kubeconfig: str | None, context: str | None
) -> tuple[object, LiveCanary]:
    from ..k8s.apply import connect, server_url
    from ..k8s.canary import find_canary
    from ..k8s.errors import KubernetesError

    cfg = deployment_config(AppSpec.of(app), DeployOptions(namespace=namespace))
    stable = dns_label(cfg.deployment_name)
    api = connect(kubeconfig, context)
    try:
        live = find_canary(api, cfg.namespace, stable)
        if live is None:
            raise KubernetesError(
                f"no canary runs beside deployment/{stable} in namespace '{cfg.namespace}' at "
                f"{server_url(api)}: start one with `inference deploy --canary [MODEL=]REF`"
            )
    except BaseException:
        api.close()
        raise
    return api, live


def _finish_canary(
    app: HmlApp,
    namespace: str | None,
    kubeconfig: str | None,
    context: str | None,
    dry_run: bool,
    wait: bool,
    timeout: float | None,
    *,
    promote: bool,
) -> None:
    """Promote: the stable Deployment takes the canary's pod template and, once rolled out, the
    canary goes. Abort: the stable Deployment gets its replicas back and the canary goes at
    once."""
    from ..k8s.apply import apply_one

    api, live = _connect_to_canary(app, namespace, kubeconfig, context)
    try:
        stable = _promotion(live, dry_run) if promote else live.restored()
        if dry_run:
            _print_plan(stable, live)
            return
        click.echo(f"{'promoting' if promote else 'removing'} {live.line()}", err=True)
        click.echo(apply_one(api, stable).line())
        name, limit = stable["metadata"]["name"], timeout or DEFAULT_WAIT_TIMEOUT
        if promote:  # the canary serves until the stable pods run its version
            _wait(api, live.namespace, name, limit)
        _delete(api, live)
        if wait and not promote:
            _wait(api, live.namespace, name, limit)
    finally:
        api.close()  # type: ignore[attr-defined]


def _promotion(live: LiveCanary, dry_run: bool) -> Manifest:
    """The stable Deployment to apply for a promotion. Where the stable pods follow an alias of
    the canary's model, promoting moves that alias to the canary's version (a compare-and-set
    against what it names now) and restarts the stable pods, which keep following it; otherwise
    they take the canary's pod template and pin its version."""
    from ..models.store import ModelStore
    from ..storage import open_storage

    alias = live.followed_alias
    if alias is None:
        return live.promoted()
    model, version = str(live.record["model"]), str(live.record["version"])
    root = live.pods_root()
    if root is None:
        click.echo(
            f"warning: the stable pods follow '{alias}' of model '{model}', but their bucket "
            f"cannot be opened from here to move it to {version}: they will pin {version} "
            f"instead; to follow '{alias}' again, move it (`hml models promote {model} "
            f"{version} --to {alias}`) and deploy with --model {model}={alias}",
            err=True,
        )
        return live.promoted()
    store = ModelStore(open_storage(root))
    current = store.aliases(model).get(alias)
    moved = f"alias '{alias}' of model '{model}' in {store.storage.url}"
    if current == version:
        click.echo(f"{moved} already names {version}", err=True)
    elif dry_run:
        click.echo(f"would move {moved}: {current} -> {version}", err=True)
    else:
        store.set_alias(
            model, alias, version, expected=current, reason=f"inference promote ({live.name})"
        )
        click.echo(f"moved {moved}: {current} -> {version}", err=True)
    return live.following()


def _print_plan(stable: Manifest, live: LiveCanary) -> None:
    for api_version, kind, name in live.objects():
        click.echo(f"would delete {kind.lower()}/{name} ({api_version}) if present", err=True)
    click.echo(to_yaml([stable]), nl=False)


def _delete(api: object, live: LiveCanary) -> None:
    from ..k8s.apply import delete_object

    for api_version, kind, name in live.objects():
        outcome = delete_object(api, api_version, kind, live.namespace, name)
        if outcome is not None:
            click.echo(outcome.line())
