"""Flower's SecAgg+ (flwr 1.41.0, SecAggPlusWorkflow + secaggplus_mod) for
benches/aggregation_secagg.sh, deployment runtime: the ServerApp runs under a SuperLink, each
client under its own SuperNode process, all talking gRPC over loopback.

Measured like benches/aggregation measures ours: per client message, the protobuf size of its
content in and out and the client's thread CPU time per SecAgg+ stage (a client mod outside
secaggplus_mod, one JSON line per message appended to the run config's `log`); for the server,
the ServerApp thread's CPU time and the round's wall time (written to `out`).
"""

import json
import time

import numpy as np
from flwr.client import ClientApp, NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.common import Context, ndarrays_to_parameters
from flwr.common.serde import recorddict_to_proto
from flwr.server import Grid, LegacyContext, ServerApp, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow


def size_mod(msg, ctxt, call_next):
    """Outermost client mod: bytes in/out and the client's CPU time per SecAgg+ stage."""
    cfg = msg.content.config_records.get("secaggplus_configs")
    stage = str(cfg.get("stage")) if cfg is not None else msg.metadata.message_type
    inb = recorddict_to_proto(msg.content).ByteSize()
    c0, w0 = time.thread_time(), time.perf_counter()
    out = call_next(msg, ctxt)
    cpu, wall = time.thread_time() - c0, time.perf_counter() - w0
    outb = recorddict_to_proto(out.content).ByteSize() if out.has_content() else 0
    with open(str(ctxt.run_config["log"]), "a") as f:
        f.write(json.dumps({"stage": stage, "in": inb, "out": outb, "cpu": cpu, "wall": wall}) + "\n")
    return out


class Client(NumPyClient):
    def __init__(self, length):
        self.length = length

    def fit(self, parameters, config):
        rng = np.random.default_rng()
        return [rng.uniform(-1.0, 1.0, self.length).astype(np.float32)], 1, {}


def client_fn(context: Context):
    return Client(int(context.run_config["length"])).to_client()


client_app = ClientApp(client_fn=client_fn, mods=[size_mod, secaggplus_mod])
server_app = ServerApp()


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    cfg = context.run_config
    n, length = int(cfg["clients"]), int(cfg["length"])
    strategy = FedAvg(
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=n,
        min_available_clients=n,
        initial_parameters=ndarrays_to_parameters([np.zeros(length, np.float32)]),
    )
    ctx = LegacyContext(context=context, config=ServerConfig(num_rounds=1), strategy=strategy)
    fit = SecAggPlusWorkflow(
        num_shares=int(cfg["shares"]),
        reconstruction_threshold=int(cfg["threshold"]),
        # A reply lost on the loaded machine counts as a dropout instead of stalling the round.
        timeout=float(cfg["timeout"]),
    )
    c0, w0 = time.thread_time(), time.perf_counter()
    DefaultWorkflow(fit_workflow=fit)(grid, ctx)
    summary = {
        "server_thread_cpu_s": time.thread_time() - c0,
        "round_wall_s": time.perf_counter() - w0,
        "clients": n,
        "length": length,
    }
    with open(str(cfg["out"]), "w") as f:
        json.dump(summary, f)
