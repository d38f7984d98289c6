"""Flower's SecAgg+ (flwr 1.41.0, SecAggPlusWorkflow + secaggplus_mod) at N clients and L entries,
measured the way benches/aggregation measures ours: client compute per client, server compute,
bytes per message, communication rounds. Driven by benches/aggregation_secagg.sh.

Runs Flower's Simulation Runtime (Ray backend): the ServerApp and N virtual SuperNodes exchange
Flower Messages through the SuperLink's in-memory grid on this machine. Bytes are the protobuf
size of every message's content (what the deployment runtime would put on the wire), counted by
a client mod placed outside secaggplus_mod.
"""

import argparse
import json
import os
import time

import numpy as np
from flwr.client import ClientApp, NumPyClient
from flwr.client.mod import secaggplus_mod
from flwr.common import Context, ndarrays_to_parameters
from flwr.common.serde import recorddict_to_proto
from flwr.server import Grid, LegacyContext, ServerApp, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.server.workflow import DefaultWorkflow, SecAggPlusWorkflow
from flwr.simulation import run_simulation

p = argparse.ArgumentParser()
p.add_argument("--clients", type=int, required=True)
p.add_argument("--length", type=int, required=True)
p.add_argument("--shares", type=int, default=5, help="SecAgg+ num_shares (neighbours + self)")
p.add_argument("--threshold", type=int, default=3, help="SecAgg+ reconstruction_threshold")
p.add_argument("--log", required=True, help="file for one JSON line per client message")
p.add_argument("--out", required=True, help="file for the JSON summary")
args = p.parse_args()
N, L = args.clients, args.length
os.environ["VG_SECAGG_LOG"] = args.log


def size_mod(msg, ctxt, call_next):
    """Outermost client mod: bytes in/out and the client's CPU time per SecAgg+ stage."""
    cfg = msg.content.config_records.get("secaggplus_configs")
    stage = str(cfg.get("stage")) if cfg is not None else msg.metadata.message_type
    inb = recorddict_to_proto(msg.content).ByteSize()
    c0, w0 = time.thread_time(), time.perf_counter()
    out = call_next(msg, ctxt)
    cpu, wall = time.thread_time() - c0, time.perf_counter() - w0
    outb = recorddict_to_proto(out.content).ByteSize() if out.has_content() else 0
    with open(os.environ["VG_SECAGG_LOG"], "a") as f:
        f.write(json.dumps({"stage": stage, "in": inb, "out": outb, "cpu": cpu, "wall": wall}) + "\n")
    return out


class Client(NumPyClient):
    def fit(self, parameters, config):
        rng = np.random.default_rng()
        return [rng.uniform(-1.0, 1.0, L).astype(np.float32)], 1, {}


def client_fn(context: Context):
    return Client().to_client()


client_app = ClientApp(client_fn=client_fn, mods=[size_mod, secaggplus_mod])
server_app = ServerApp()


@server_app.main()
def main(grid: Grid, context: Context) -> None:
    strategy = FedAvg(
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=N,
        min_available_clients=N,
        initial_parameters=ndarrays_to_parameters([np.zeros(L, np.float32)]),
    )
    ctx = LegacyContext(context=context, config=ServerConfig(num_rounds=1), strategy=strategy)
    fit = SecAggPlusWorkflow(num_shares=args.shares, reconstruction_threshold=args.threshold)
    c0, w0 = time.thread_time(), time.perf_counter()
    DefaultWorkflow(fit_workflow=fit)(grid, ctx)
    summary = {"server_thread_cpu_s": time.thread_time() - c0, "round_wall_s": time.perf_counter() - w0}
    with open(args.out, "w") as f:
        json.dump(summary, f)


run_simulation(
    server_app=server_app,
    client_app=client_app,
    num_supernodes=N,
    backend_config={"client_resources": {"num_cpus": 1, "num_gpus": 0.0}, "init_args": {"num_cpus": 2}},
)
