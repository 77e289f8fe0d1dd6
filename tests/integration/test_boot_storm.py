"""The boot storm of make test: 48 boots over every machine, firmware and vCPU count.

Each boot must answer on every shard from its first packet (boot_storm.py
says how a boot is checked). Any miss fails the case, with the boot and the
shard that did not answer. `make soak` runs the same over 500 boots.
"""
from boot_storm import default_plan, storm
from flows import flows_selftest

def storm_case(app, rounds):
    def run():
        plan = default_plan(rounds, (app,))
        boots, failures = storm(plan)
        print(f"  {boots - len(failures)} of {boots} boots answered on every shard")
        assert not failures, "\n".join(failures)
    return run

def cases():
    # Every configuration at 2 and 4 vCPUs, twice: 24 boots per app.
    n = len(default_plan(2))
    # The storm picks its source ports with flows.py: first, that it is Toeplitz at all.
    return [("flow-hash-published-vectors", flows_selftest),
            (f"boot-storm-memcached-{n}-boots", storm_case("memcached", 2)),
            (f"boot-storm-echo-{n}-boots", storm_case("echo", 2))]
