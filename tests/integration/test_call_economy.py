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
        # termination and stop protection; the shutdown behaviour is "stop"
        # already (read with DescribeInstanceAttribute, not sent); the two
        # changes read back after, and no volume read back (none changed)
        assert c.count("ModifyInstanceAttribute") == 2
        assert c.count("DescribeInstanceAttribute") == 3 + 2
        assert c.count("DescribeInstances") == 1  # the core's, for the batch
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


def test_one_snapshot_lookup_for_the_batch(world):
    """snapshot looks for earlier snapshots of the case once for the whole
    batch (its own account's only), not once per instance; what it finds
    there is adopted as it would have been instance by instance."""
    ids = world.vpc_world(n_instances=3, enis=1, volumes=2)["instances"]
    conf = world.write_conf(["snapshot"], {"snapshot": {}})
    args = ["--conf", conf, "--case-id", "IR-B1"]
    for i in ids:
        args += ["-i", i]
    with Counter(world) as c:
        world.irfw(*args, env={"AWS_ENDPOINT_URL": c.proxy.url}, check_rc=0)
        looks = [f for f in c.calls if f.get("Action") == "DescribeSnapshots"]
        assert len(looks) == 1, looks
        # Owner=self, and the owner-id filter first: moto applies filters
        # one after another, and reading the tags of its ~1,200 public
        # snapshots first cost about 100 ms a call.
        assert looks[0].get("Owner.1") == "self", looks[0]
        assert (looks[0].get("Filter.1.Name"), looks[0].get("Filter.1.Value.1")) == ("owner-id", world.account_id), looks[0]
        assert (looks[0].get("Filter.2.Name"), looks[0].get("Filter.2.Value.1")) == ("tag:irfw:case", "IR-B1"), looks[0]
        assert c.count("CreateSnapshots") == 3
    ec2 = world.client("ec2")

    def case_snaps():
        return ec2.describe_snapshots(Filters=[{"Name": "tag:irfw:case", "Values": ["IR-B1"]}])["Snapshots"]

    assert len(case_snaps()) == 6
    # The step forced to run again: the one look finds them all, nothing new.
    with Counter(world) as c:
        p = world.irfw(*args, "--no-resume", "-o", "json", env={"AWS_ENDPOINT_URL": c.proxy.url}, check_rc=0)
        assert c.count("DescribeSnapshots") == 1
        assert c.count("CreateSnapshots") == 0 and c.count("CreateSnapshot") == 0
    assert len(case_snaps()) == 6
    for inst in p.json["instances"]:
        assert "already snapshotted: 2 snapshots" in inst["steps"][0]["detail"], inst


def test_snapshot_lookup_falls_back_per_instance(world):
    """A refused batch look-up is not fatal: each instance looks for itself
    (and a refusal there fails that instance's step, naming it)."""
    ids = world.vpc_world(n_instances=2, enis=1, volumes=1)["instances"]
    conf = world.write_conf(["snapshot"], {"snapshot": {}})
    from refusing_proxy import ec2_error

    def refuse(form):
        # The batch look-up names no instance.
        if form.get("Action") == "DescribeSnapshots" and "i-" not in " ".join(form.values()):
            return 503, "text/xml", ec2_error("Unavailable", "Service unavailable", "req-batch-1")
        return None

    args = ["--conf", conf, "--case-id", "IR-B2", "-i", ids[0], "-i", ids[1], "-o", "json"]
    with Counter(world, refuse) as c:
        p = world.irfw(*args, env={"AWS_ENDPOINT_URL": c.proxy.url}, check_rc=0)
        per_instance = [f for f in c.calls if f.get("Action") == "DescribeSnapshots" and
                        any(v in ids for v in f.values())]
        assert len(per_instance) == 2, c.calls
        assert c.count("CreateSnapshots") == 2
    assert "looking instance by instance" in p.stderr
    for inst in p.json["instances"]:
        assert inst["steps"][0]["status"] == "ok", inst


def test_one_load_balancer_screen_for_the_batch(world):
    """elb reads the account's load balancers once for a fleet: instances no
    load balancer names cost no call, the one registered looks again for
    itself and is deregistered everywhere (asserted in moto)."""
    from test_elb import classic_ids, lb_world, tg_ids

    w = lb_world(world, n_instances=4)
    iid, others = w["instances"][0], w["instances"][1:]
    world.client("elbv2").register_targets(TargetGroupArn=w["tgs"][0], Targets=[{"Id": iid, "Port": 80}])
    world.client("elb").register_instances_with_load_balancer(LoadBalancerName="classic-web",
                                                              Instances=[{"InstanceId": iid}])
    conf = world.write_conf(["elb"])
    args = ["--conf", conf, "--case-id", "IR-E1", "-o", "json"]
    for i in w["instances"]:
        args += ["-i", i]
    with Counter(world) as c:
        p = world.irfw(*args, env={"AWS_ENDPOINT_URL": c.proxy.url}, check_rc=0)
        # The screen once, then the registered instance's own look.
        assert c.count("DescribeTargetGroups") == 2, c.calls
        assert c.count("DescribeLoadBalancers") == 2
        # Two instance-type groups, each read once by the screen and once
        # by the registered instance; then its deregistration read back.
        assert c.count("DescribeTargetHealth") == 5
        assert c.count("DeregisterTargets") == 1 and c.count("DeregisterInstancesFromLoadBalancer") == 1
    assert iid not in tg_ids(world, w["tgs"][0]) and iid not in classic_ids(world)
    by = {i["instance_id"]: i["steps"][0] for i in p.json["instances"]}
    assert by[iid]["status"] == "ok", by[iid]
    for o in others:
        assert by[o]["status"] == "skipped" and "not registered with any load balancer" in by[o]["detail"], by[o]


def test_no_profile_costs_no_call(world):
    """iam_profile trusts this run's DescribeInstances for an instance that
    shows no profile (and that no earlier run of the case took one from);
    an instance with one is asked about and loses it (asserted in moto)."""
    from test_iam_profile import associations, launch, make_profile

    prof = make_profile(world, "web-prof", "web-role")
    bare, held = launch(world), launch(world, prof["Arn"])
    conf = world.write_conf(["iam_profile"])
    with Counter(world) as c:
        p = world.irfw("--conf", conf, "-i", bare, "-i", held, "--case-id", "IR-P1", "-o", "json",
                       env={"AWS_ENDPOINT_URL": c.proxy.url}, check_rc=0)
        asked = [f for f in c.calls if f.get("Action") == "DescribeIamInstanceProfileAssociations"]
        assert asked and all(bare not in f.values() for f in asked), asked
        assert c.count("DisassociateIamInstanceProfile") == 1
    by = {i["instance_id"]: i["steps"][0] for i in p.json["instances"]}
    assert by[bare]["status"] == "skipped" and by[bare]["detail"] == "no instance profile", by[bare]
    assert by[held]["status"] == "ok", by[held]
    assert associations(world, held) == []
