"""Call economy: no call whose result is already in place, one
DescribeInstances for the batch, and services without documented buckets
paced only once they throttle.  Calls are counted by a proxy in front of
moto."""
import urllib.parse

from refusing_proxy import RefusingProxy


class Counter:
    def __init__(self, world, refuse=None):
        self.calls = []

        def rule(body):
            form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode(errors="replace")).items()}
            self.calls.append(form)
            return refuse(form) if refuse else None

        self.proxy = RefusingProxy(world.moto.url, rule)

    def count(self, action, **has):
        return sum(1 for f in self.calls if f.get("Action") == action and all(
            any(k.startswith(p) for k in f) for p in has.get("keys", [])))

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.proxy.close()


def test_volumes_already_kept_cost_no_call(world):
    ec2 = world.client("ec2")
    iid = world.vpc_world(enis=1, volumes=2)["instances"][0]
    devs = [m["DeviceName"] for m in world.instance(iid)["BlockDeviceMappings"]]
    ec2.modify_instance_attribute(InstanceId=iid, BlockDeviceMappings=[
        {"DeviceName": d, "Ebs": {"DeleteOnTermination": False}} for d in devs])
    conf = world.write_conf(["protect"], {"protect": {}})
    with Counter(world) as c:
        p = world.irfw("--conf", conf, "-i", iid, "-o", "json", env={"AWS_ENDPOINT_URL": c.proxy.url}, check_rc=0)
        assert c.count("ModifyInstanceAttribute", keys=["BlockDeviceMapping"]) == 0
        assert c.count("ModifyInstanceAttribute") == 3  # termination, stop, shutdown behaviour
    s = p.json["instances"][0]["steps"][0]
    assert "already kept" in s["detail"], s
    # Not kept yet: one call does both volumes.
    iid2 = world.vpc_world(enis=1, volumes=2)["instances"][0]
    with Counter(world) as c:
        world.irfw("--conf", conf, "-i", iid2, env={"AWS_ENDPOINT_URL": c.proxy.url}, check_rc=0)
        assert c.count("ModifyInstanceAttribute", keys=["BlockDeviceMapping"]) == 1
    assert all(not m["Ebs"]["DeleteOnTermination"] for m in world.instance(iid2)["BlockDeviceMappings"])


def test_one_describe_for_the_batch(world):
    ids = world.vpc_world(n_instances=4, enis=1, volumes=1)["instances"]
    conf = world.write_conf(["good"], {"good": {"needed": "x"}})
    args = ["--conf", conf]
    for i in ids:
        args += ["-i", i]
    with Counter(world) as c:
        world.irfw(*args, env={"AWS_ENDPOINT_URL": c.proxy.url}, check_rc=0)
        assert c.count("DescribeInstances") == 1
    # One id that does not exist: AWS names it, and it is asked again without it.
    with Counter(world) as c:
        p = world.irfw(*args, "-i", "i-0123456789abcdef0", env={"AWS_ENDPOINT_URL": c.proxy.url}, check_rc=3)
        assert c.count("DescribeInstances") == 2
    assert p.stderr.count("instance not found") == 1
