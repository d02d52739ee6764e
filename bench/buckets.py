"""EC2's request token buckets, as "Request throttling for the Amazon EC2 API"
(EC2 Developer Guide) documents them, and the bound they put on a set of calls.

EC2 evaluates each API on its own: every API action has its own bucket,
whose maximum capacity and refill rate (tokens per second) come from the
action's category, or from its own line for the "uncategorized" actions.
A request takes one token; with none left it is answered RequestLimitExceeded.
The handful of describes of the "unfiltered and unpaginated" category draw
from a smaller bucket when called with neither a filter nor pagination.

Other services' limits are not modelled: the benchmark counts their calls
but never throttles them (see README.md).
"""
import re

# Category buckets: (maximum capacity, refill per second).
NON_MUTATING = (100, 20)
UNFILTERED = (50, 10)
MUTATING = (50, 5)
RESOURCE_INTENSIVE = (50, 5)

# Non-mutating actions that use the smaller bucket when requested without
# a filter and without pagination.
UNFILTERED_ACTIONS = frozenset({
    "DescribeInstances", "DescribeInstanceStatus", "DescribeNetworkInterfaces", "DescribeSecurityGroups",
    "DescribeSnapshots", "DescribeSpotInstanceRequests", "DescribeVolumes",
})

RESOURCE_INTENSIVE_ACTIONS = frozenset({
    "AcceptVpcPeeringConnection", "AuthorizeSecurityGroupIngress", "CancelSpotInstanceRequests", "CreateKeyPair",
    "CreateVpcPeeringConnection", "DeleteVpcPeeringConnection", "RejectVpcPeeringConnection",
    "RevokeSecurityGroupIngress", "RequestSpotInstances",
})

# Actions with buckets of their own ("uncategorized actions"): the ones an
# incident-response run or its seeding may send.  Any other action falls in
# its category.
UNCATEGORIZED = {
    "AssignPrivateIpAddresses": (100, 5),
    "AssociateIamInstanceProfile": (100, 5),
    "CopyImage": (100, 1),
    "CreateNetworkInterface": (100, 5),
    "CreateSnapshot": (100, 5),
    "CreateSnapshots": (100, 5),
    "CreateTags": (100, 10),
    "CreateVolume": (100, 5),
    "DeleteNetworkInterface": (100, 5),
    "DeleteSnapshot": (100, 5),
    "DeleteTags": (100, 10),
    "DeleteVolume": (100, 5),
    "DescribeSecurityGroupReferences": (20, 5),
    "DescribeStaleSecurityGroups": (20, 5),
    "DescribeSpotFleetInstances": (100, 5),
    "DescribeSpotFleetRequests": (50, 3),
    "DisassociateIamInstanceProfile": (100, 5),
    "ModifyImageAttribute": (100, 5),
    "ModifyInstanceMetadataOptions": (100, 5),
    "ModifyNetworkInterfaceAttribute": (100, 5),
    "ModifySnapshotAttribute": (100, 5),
    "RunInstances": (5, 2),
    "StartInstances": (5, 2),
    "TerminateInstances": (100, 5),
    "UnassignPrivateIpAddresses": (100, 5),
}

_NON_MUTATING_RE = re.compile(r"^(Describe|List|Search|Get)")
_FILTER_RE = re.compile(r"^Filter\.\d+\.")
_PAGINATION = ("MaxResults", "NextToken")


def ec2_bucket(action, params, ids_are_filters=False):
    """The bucket an EC2 request draws from: (key, capacity, refill per s).

    `params` maps the form's field names to values.  A request is filtered
    when it has a Filter.N field, paginated when it has MaxResults or
    NextToken.  The guide does not say whether a list of ids
    (InstanceId.N...) counts as a filter; by default it does not, which is
    the strict reading; `ids_are_filters` takes the lenient one.
    """
    if action in UNCATEGORIZED:
        cap, rate = UNCATEGORIZED[action]
        return action, cap, rate
    if action in RESOURCE_INTENSIVE_ACTIONS:
        return action, *RESOURCE_INTENSIVE
    if _NON_MUTATING_RE.match(action):
        if action in UNFILTERED_ACTIONS:
            narrowed = any(_FILTER_RE.match(k) for k in params) or any(k in params for k in _PAGINATION)
            if ids_are_filters:
                narrowed = narrowed or any(re.match(r"^[A-Za-z]+Id\.\d+$", k) for k in params)
            if not narrowed:
                return action + " (unfiltered)", *UNFILTERED
        return action, *NON_MUTATING
    return action, *MUTATING


def bucket_time(n, capacity, rate):
    """Least time (s) for `n` requests through one bucket that starts full:
    the first `capacity` go at once, then one every 1/rate seconds."""
    if n <= capacity or n <= 0:
        return 0.0
    return (n - capacity) / rate


def bound(counts, specs, scale=1.0):
    """The token-bucket bound of a set of calls: the time the slowest bucket
    needs for its share.  `counts` maps bucket key to calls that went
    through, `specs` maps key to (capacity, rate); `scale` multiplies every
    refill rate.  Returns (seconds, key of the limiting bucket or None)."""
    best, which = 0.0, None
    for key, n in counts.items():
        cap, rate = specs[key]
        t = bucket_time(n, cap, rate * scale)
        if t > best:
            best, which = t, key
    return best, which
