"""The boot storm of make test: 40 boots over every machine, firmware and vCPU count.

Each boot must answer on every shard from its first packet (boot_storm.py
says how a boot is checked). Any miss fails the case, with the boot and the
shard that did not answer. `make soak` runs the same over 500 boots.
"""
from boot_storm import default_plan, storm

def storm_case(app, rounds):
    def run():
        plan = default_plan(rounds)
        boots, failures = storm(plan, app)
        print(f"  {boots - len(failures)} of {boots} boots answered on every shard")
        assert not failures, "\n".join(failures)
    return run

def cases():
    # 5 configurations x 2 vCPU counts x 2 rounds = 20 boots per app.
    return [("boot-storm-memcached-20-boots", storm_case("memcached", 2)),
            ("boot-storm-echo-20-boots", storm_case("echo", 2))]
