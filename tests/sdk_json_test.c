/*
 * sdk_json_test.c - the SDK's view of AWS results: the neutral shape made
 * of real reply bodies (EC2, query with one and several members, S3 with
 * one and two Contents, JSON left alone), the typed getters on every kind
 * of value, the request builders, and the paginator, driven through the
 * real irfw_aws_call_in() with the HTTP client replaced by pages of our
 * own (the link wraps irfw_aws_request).
 */
#define _POSIX_C_SOURCE 200809L

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aws/protocol.h"
#include "aws/xml.h"
#include "run.h"
#include "base/buf.h"
#include "base/text.h"
#include "aws/names.h"
#include "sdk_json.h"

static cJSON *xml(const char *s)
{
	char err[256];
	cJSON *j = irfw_xml_to_json(s, strlen(s), err, sizeof(err));
	if (!j)
		fail_msg("XML not parsed: %s", err);
	return j;
}

static cJSON *neutral(const char *body, const char *service, const char *op)
{
	cJSON *j = xml(body);
	irfw_result_neutral(j, service, op, NULL);
	return j;
}

static const cJSON *get(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k);
}

/* The tree as compact JSON, for whole-shape comparisons. */
static void assert_json(const cJSON *j, const char *want)
{
	char *s = cJSON_PrintUnformatted(j);
	assert_non_null(s);
	assert_string_equal(s, want);
	free(s);
}

/* ------------------------------------------------------------------ */
/* The neutral result.                                                  */

static const char ec2_groups[] =
    "<DescribeSecurityGroupsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
    "<requestId>req-1</requestId>"
    "<securityGroupInfo><item><groupId>sg-1</groupId><groupDescription/>"
    "<ipPermissions/>"
    "<ipPermissionsEgress><item><ipProtocol>-1</ipProtocol><groups/>"
    "<ipRanges><item><cidrIp>0.0.0.0/0</cidrIp></item></ipRanges><ipv6Ranges/>"
    "<prefixListIds/></item></ipPermissionsEgress>"
    "<tagSet/></item></securityGroupInfo>"
    "</DescribeSecurityGroupsResponse>";

static void test_ec2(void **state)
{
	(void)state;
	cJSON *j = neutral(ec2_groups, "ec2", "DescribeSecurityGroups");
	/* No request id; every list an array, empty ones too; an empty
	 * scalar stays "". */
	assert_json(j, "{\"securityGroupInfo\":[{\"groupId\":\"sg-1\",\"groupDescription\":\"\","
	               "\"ipPermissions\":[],\"ipPermissionsEgress\":[{\"ipProtocol\":\"-1\",\"groups\":[],"
	               "\"ipRanges\":[{\"cidrIp\":\"0.0.0.0/0\"}],\"ipv6Ranges\":[],\"prefixListIds\":[]}],"
	               "\"tagSet\":[]}]}");
	cJSON_Delete(j);

	/* An empty top-level set, and no list at all. */
	j = neutral("<DescribeAddressesResponse><requestId>r</requestId><addressesSet/>"
	            "</DescribeAddressesResponse>",
	            "ec2", "DescribeAddresses");
	assert_json(j, "{\"addressesSet\":[]}");
	cJSON_Delete(j);
	j = neutral("<ModifyInstanceAttributeResponse><requestId>r</requestId><return>true</return>"
	            "</ModifyInstanceAttributeResponse>",
	            "ec2", "ModifyInstanceAttribute");
	assert_json(j, "{\"return\":\"true\"}");
	assert_true(irfw_json_bool(j, "return", false));
	cJSON_Delete(j);
}

/* irfw_ec2_instance_in and irfw_ec2_delete_on_termination on a
 * DescribeInstances answer as the client gives it (one mapping, one
 * instance per reservation or two). */
static void test_ec2_readers(void **state)
{
	(void)state;
	cJSON *j = neutral(
	    "<DescribeInstancesResponse><requestId>r</requestId><reservationSet><item><instancesSet>"
	    "<item><instanceId>i-1</instanceId><blockDeviceMapping><item><deviceName>/dev/sda1</deviceName>"
	    "<ebs><volumeId>vol-1</volumeId><deleteOnTermination>false</deleteOnTermination></ebs></item>"
	    "</blockDeviceMapping></item>"
	    "<item><instanceId>i-2</instanceId><blockDeviceMapping>"
	    "<item><deviceName>/dev/sda1</deviceName><ebs><volumeId>vol-2</volumeId>"
	    "<deleteOnTermination>true</deleteOnTermination></ebs></item>"
	    "<item><deviceName>/dev/sdf</deviceName><ebs><volumeId>vol-3</volumeId></ebs></item>"
	    "</blockDeviceMapping></item></instancesSet></item></reservationSet></DescribeInstancesResponse>",
	    "ec2", "DescribeInstances");
	const cJSON *i1 = irfw_ec2_instance_in(j, "i-1"), *i2 = irfw_ec2_instance_in(j, "i-2");
	assert_non_null(i1);
	assert_non_null(i2);
	assert_string_equal(irfw_json_str(i2, "instanceId"), "i-2");
	assert_null(irfw_ec2_instance_in(j, "i-3"));
	assert_null(irfw_ec2_instance_in(j, NULL));
	assert_null(irfw_ec2_instance_in(NULL, "i-1"));
	assert_int_equal(irfw_ec2_delete_on_termination(i1, "/dev/sda1"), 0);
	assert_int_equal(irfw_ec2_delete_on_termination(i2, "/dev/sda1"), 1);
	assert_int_equal(irfw_ec2_delete_on_termination(i2, "/dev/sdf"), -1); /* no flag */
	assert_int_equal(irfw_ec2_delete_on_termination(i1, "/dev/sdz"), -1); /* no such device */
	assert_int_equal(irfw_ec2_delete_on_termination(i1, NULL), -1);
	assert_int_equal(irfw_ec2_delete_on_termination(NULL, "/dev/sda1"), -1);
	cJSON_Delete(j);
}

static const char asg_one[] =
    "<DescribeAutoScalingGroupsResponse xmlns=\"http://autoscaling.amazonaws.com/doc/2011-01-01/\">"
    "<DescribeAutoScalingGroupsResult><AutoScalingGroups><member>"
    "<AutoScalingGroupName>web</AutoScalingGroupName><MinSize>1</MinSize>"
    "<SuspendedProcesses/><Instances><member><InstanceId>i-1</InstanceId>"
    "<ProtectedFromScaleIn>false</ProtectedFromScaleIn></member></Instances>"
    "</member></AutoScalingGroups><NextToken>tok-2</NextToken></DescribeAutoScalingGroupsResult>"
    "<ResponseMetadata><RequestId>req-9</RequestId></ResponseMetadata>"
    "</DescribeAutoScalingGroupsResponse>";

static const char asg_two[] =
    "<DescribeAutoScalingInstancesResponse><DescribeAutoScalingInstancesResult>"
    "<AutoScalingInstances><member><InstanceId>i-1</InstanceId></member>"
    "<member><InstanceId>i-2</InstanceId></member></AutoScalingInstances>"
    "</DescribeAutoScalingInstancesResult><ResponseMetadata><RequestId>r</RequestId>"
    "</ResponseMetadata></DescribeAutoScalingInstancesResponse>";

static void test_query(void **state)
{
	(void)state;
	/* One member: the wrapper's members at the top, alone; the list an
	 * array of one, the empty list []. */
	cJSON *j = neutral(asg_one, "autoscaling", "DescribeAutoScalingGroups");
	assert_json(j, "{\"AutoScalingGroups\":[{\"AutoScalingGroupName\":\"web\",\"MinSize\":\"1\","
	               "\"SuspendedProcesses\":[],\"Instances\":[{\"InstanceId\":\"i-1\","
	               "\"ProtectedFromScaleIn\":\"false\"}]}],\"NextToken\":\"tok-2\"}");
	const cJSON *g = irfw_json_list_item(j, "AutoScalingGroups", 0);
	assert_int_equal(irfw_json_long(g, "MinSize", -1), 1);
	assert_false(irfw_json_bool(irfw_json_list_item(g, "Instances", 0), "ProtectedFromScaleIn", true));
	cJSON_Delete(j);

	/* Several members. */
	j = neutral(asg_two, "autoscaling", "DescribeAutoScalingInstances");
	assert_json(j, "{\"AutoScalingInstances\":[{\"InstanceId\":\"i-1\"},{\"InstanceId\":\"i-2\"}]}");
	cJSON_Delete(j);

	/* None: an empty list, and an empty Result element. */
	j = neutral("<DescribeAutoScalingInstancesResponse><DescribeAutoScalingInstancesResult>"
	            "<AutoScalingInstances/></DescribeAutoScalingInstancesResult><ResponseMetadata>"
	            "<RequestId>r</RequestId></ResponseMetadata></DescribeAutoScalingInstancesResponse>",
	            "autoscaling", "DescribeAutoScalingInstances");
	assert_json(j, "{\"AutoScalingInstances\":[]}");
	cJSON_Delete(j);
	j = neutral("<SetInstanceProtectionResponse><SetInstanceProtectionResult/><ResponseMetadata>"
	            "<RequestId>r</RequestId></ResponseMetadata></SetInstanceProtectionResponse>",
	            "autoscaling", "SetInstanceProtection");
	assert_json(j, "{}");
	cJSON_Delete(j);
	/* No Result element at all: only the metadata goes. */
	j = neutral("<DeleteTopicResponse><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"
	            "<Other>kept</Other></DeleteTopicResponse>",
	            "sns", "DeleteTopic");
	assert_json(j, "{\"Other\":\"kept\"}");
	cJSON_Delete(j);

	/* STS and SNS the same way; an empty scalar is not a list. */
	j = neutral("<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:iam::1:user/r</Arn>"
	            "<UserId>AID</UserId><Account>1</Account></GetCallerIdentityResult><ResponseMetadata>"
	            "<RequestId>r</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
	            "sts", "GetCallerIdentity");
	assert_json(j, "{\"Arn\":\"arn:aws:iam::1:user/r\",\"UserId\":\"AID\",\"Account\":\"1\"}");
	cJSON_Delete(j);
	j = neutral("<ListTopicsResponse><ListTopicsResult><Topics/><NextToken/></ListTopicsResult>"
	            "</ListTopicsResponse>",
	            "sns", "ListTopics");
	assert_json(j, "{\"Topics\":[],\"NextToken\":\"\"}");
	cJSON_Delete(j);

	/* ELB classic: Instances inside each description. */
	j = neutral(
	    "<DescribeLoadBalancersResponse><DescribeLoadBalancersResult><LoadBalancerDescriptions>"
	    "<member><LoadBalancerName>lb</LoadBalancerName><Instances/></member>"
	    "</LoadBalancerDescriptions></DescribeLoadBalancersResult></DescribeLoadBalancersResponse>",
	    "elb", "DescribeLoadBalancers");
	assert_json(j, "{\"LoadBalancerDescriptions\":[{\"LoadBalancerName\":\"lb\",\"Instances\":[]}]}");
	cJSON_Delete(j);
}

static void test_s3(void **state)
{
	(void)state;
	static const char head[] = "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	                           "<Name>b</Name><KeyCount>";
	char body[1024];

	snprintf(body, sizeof(body),
	         "%s1</KeyCount><IsTruncated>false</IsTruncated>"
	         "<Contents><Key>a</Key><Size>3</Size></Contents></ListBucketResult>",
	         head);
	cJSON *j = neutral(body, "s3", "ListObjectsV2");
	assert_json(j, "{\"Name\":\"b\",\"KeyCount\":\"1\",\"IsTruncated\":\"false\","
	               "\"Contents\":[{\"Key\":\"a\",\"Size\":\"3\"}]}");
	cJSON_Delete(j);

	snprintf(body, sizeof(body),
	         "%s2</KeyCount><Contents><Key>a</Key></Contents>"
	         "<Contents><Key>b</Key></Contents><Marker/></ListBucketResult>",
	         head);
	j = neutral(body, "s3", "ListObjectsV2");
	assert_json(j, "{\"Name\":\"b\",\"KeyCount\":\"2\",\"Contents\":[{\"Key\":\"a\"},{\"Key\":\"b\"}],"
	               "\"Marker\":\"\"}");
	assert_int_equal(irfw_json_list_count(j, "Contents"), 2);
	cJSON_Delete(j);

	/* None: S3 leaves Contents out, and so does the result. */
	snprintf(body, sizeof(body), "%s0</KeyCount></ListBucketResult>", head);
	j = neutral(body, "s3", "ListObjectsV2");
	assert_json(j, "{\"Name\":\"b\",\"KeyCount\":\"0\"}");
	cJSON_Delete(j);

	/* The place of a wrapped member is kept. */
	j = neutral("<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault>"
	            "<SSEAlgorithm>aws:kms</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule>"
	            "<Other>x</Other></ServerSideEncryptionConfiguration>",
	            "s3", "GetBucketEncryption");
	assert_json(j, "{\"Rule\":[{\"ApplyServerSideEncryptionByDefault\":{\"SSEAlgorithm\":\"aws:kms\"}}],"
	               "\"Other\":\"x\"}");
	cJSON_Delete(j);

	/* Another operation's members are left as they are. */
	j = neutral("<CompleteMultipartUploadResult><Location>l</Location><Key>k</Key>"
	            "</CompleteMultipartUploadResult>",
	            "s3", "CompleteMultipartUpload");
	assert_json(j, "{\"Location\":\"l\",\"Key\":\"k\"}");
	cJSON_Delete(j);
}

static void test_json_and_old_modules(void **state)
{
	(void)state;
	/* JSON protocol replies are left alone, whatever they hold. */
	static const char kms[] = "{\"Keys\":[],\"Truncated\":false,\"DescribeKeyResult\":{\"a\":1},"
	                          "\"ResponseMetadata\":\"\",\"Tags\":\"\",\"requestId\":\"x\"}";
	cJSON *j = cJSON_Parse(kms), *copy = cJSON_Duplicate(j, true);
	irfw_result_neutral(j, "kms", "DescribeKey", NULL);
	assert_true(cJSON_Compare(j, copy, true));
	irfw_result_neutral(j, "ssm", "DescribeKey", NULL);
	irfw_result_neutral(j, "no-such-service", "DescribeKey", NULL);
	assert_true(cJSON_Compare(j, copy, true));
	cJSON_Delete(j);
	cJSON_Delete(copy);
	irfw_result_neutral(NULL, "ec2", "DescribeInstances", NULL);

	/* A module built for ABI 1.1 keeps the wire's tree; 1.2 gets the
	 * neutral one. */
	struct irfw_module mod = {.name = "old"};
	struct irfw_step step = {.name = "old", .mod = &mod};
	mod.vt.abi_major = 1;
	mod.vt.abi_minor = 1;
	j = xml(asg_one);
	copy = cJSON_Duplicate(j, true);
	irfw_result_neutral(j, "autoscaling", "DescribeAutoScalingGroups", &step);
	assert_true(cJSON_Compare(j, copy, true));
	mod.vt.abi_minor = 2;
	irfw_result_neutral(j, "autoscaling", "DescribeAutoScalingGroups", &step);
	assert_null(get(j, "DescribeAutoScalingGroupsResult"));
	assert_non_null(get(j, "AutoScalingGroups"));
	cJSON_Delete(j);
	cJSON_Delete(copy);
}

/* ------------------------------------------------------------------ */
/* Getters.                                                             */

static void test_getters(void **state)
{
	(void)state;
	cJSON *o = cJSON_Parse("{\"s\":\"abc\",\"e\":\"\",\"n\":42,\"neg\":-7.9,\"big\":1e30,\"ds\":\"17\","
	                       "\"dneg\":\"-1\",\"dplus\":\"+5\",\"blank\":\" 5\",\"junk\":\"5x\","
	                       "\"huge\":\"99999999999999999999\",\"long\":\"3000000000\",\"t\":true,"
	                       "\"f\":false,\"st\":\"true\",\"sf\":\"false\",\"sT\":\"True\",\"nul\":null,"
	                       "\"arr\":[1,2],\"obj\":{\"k\":\"v\"}}");
	assert_non_null(o);

	assert_string_equal(irfw_json_str(o, "s"), "abc");
	assert_string_equal(irfw_json_str(o, "e"), "");
	assert_null(irfw_json_str(o, "n"));
	assert_null(irfw_json_str(o, "absent"));
	assert_null(irfw_json_str(NULL, "s"));

	assert_string_equal(irfw_json_text(o, "s"), "abc");
	assert_null(irfw_json_text(o, "e"));
	assert_null(irfw_json_text(o, "n"));
	assert_null(irfw_json_text(o, "t"));
	assert_null(irfw_json_text(o, "absent"));
	assert_null(irfw_json_text(NULL, "s"));

	assert_int_equal(irfw_json_long(o, "n", -2), 42);
	assert_int_equal(irfw_json_long(o, "neg", -2), -7);
	assert_int_equal(irfw_json_long(o, "big", -2), -2);
	assert_int_equal(irfw_json_long(o, "ds", -2), 17);
	assert_int_equal(irfw_json_long(o, "dneg", -2), -1);
	assert_int_equal(irfw_json_long(o, "dplus", -2), 5);
	assert_int_equal(irfw_json_long(o, "blank", -2), -2);
	assert_int_equal(irfw_json_long(o, "junk", -2), -2);
	assert_int_equal(irfw_json_long(o, "e", -2), -2);
	assert_int_equal(irfw_json_long(o, "huge", -2), -2);
	assert_int_equal(irfw_json_long(o, "long", -2), 3000000000L);
	assert_int_equal(irfw_json_long(o, "t", -2), -2);
	assert_int_equal(irfw_json_long(o, "absent", -2), -2);
	assert_int_equal(irfw_json_long(NULL, "n", -2), -2);

	assert_int_equal(irfw_json_int(o, "n", -2), 42);
	assert_int_equal(irfw_json_int(o, "ds", -2), 17);
	assert_int_equal(irfw_json_int(o, "dneg", -2), -1);
	assert_int_equal(irfw_json_int(o, "long", -2), -2); /* out of int's range */
	assert_int_equal(irfw_json_int(o, "junk", -2), -2);
	assert_int_equal(irfw_json_int(o, "s", -2), -2);
	assert_int_equal(irfw_json_int(o, "absent", -2), -2);

	assert_true(irfw_json_bool(o, "t", false));
	assert_false(irfw_json_bool(o, "f", true));
	assert_true(irfw_json_bool(o, "st", false));
	assert_false(irfw_json_bool(o, "sf", true));
	assert_true(irfw_json_bool(o, "sT", true)); /* not AWS's spelling: the default */
	assert_false(irfw_json_bool(o, "sT", false));
	assert_true(irfw_json_bool(o, "n", true));
	assert_false(irfw_json_bool(o, "e", false));
	assert_true(irfw_json_bool(o, "absent", true));
	assert_false(irfw_json_bool(NULL, "t", false));

	assert_int_equal(irfw_json_list_count(o, "arr"), 2);
	assert_int_equal(irfw_json_list_count(o, "obj"), 1);
	assert_int_equal(irfw_json_list_count(o, "s"), 1);
	assert_int_equal(irfw_json_list_count(o, "e"), 0);
	assert_int_equal(irfw_json_list_count(o, "nul"), 0);
	assert_int_equal(irfw_json_list_count(o, "absent"), 0);
	assert_int_equal(irfw_json_list_count(NULL, "arr"), 0);
	assert_int_equal(irfw_json_list_count(get(o, "arr"), NULL), 2);
	assert_int_equal(irfw_json_list_item(o, "arr", 1)->valueint, 2);
	assert_null(irfw_json_list_item(o, "arr", 2));
	assert_null(irfw_json_list_item(o, "arr", -1));
	assert_ptr_equal(irfw_json_list_item(o, "obj", 0), get(o, "obj"));
	assert_null(irfw_json_list_item(o, "obj", 1));
	assert_null(irfw_json_list_item(o, "e", 0));
	assert_null(irfw_json_list_item(o, "absent", 0));
	assert_ptr_equal(irfw_json_list_item(get(o, "obj"), NULL, 0), get(o, "obj"));
	cJSON_Delete(o);

	assert_int_equal(irfw_utf8_prefix("h\xc3\xa9llo", 6, 2), 1); /* not inside é */
	assert_int_equal(irfw_utf8_prefix("abc", 3, 5), 3);
}

static void test_iso8601(void **state)
{
	(void)state;
	char out[21];
	assert_string_equal(irfw_iso8601(0, out), "1970-01-01T00:00:00Z");
	assert_string_equal(irfw_iso8601(1714566896, out), "2024-05-01T12:34:56Z");
	assert_int_equal(strlen(irfw_iso8601(253402300799, out)), 20); /* 9999-12-31T23:59:59Z */
}

/* ------------------------------------------------------------------ */
/* Builders.                                                            */

static void test_builders(void **state)
{
	(void)state;
	cJSON *p = cJSON_CreateObject();
	assert_int_equal(irfw_ec2_filter(p, "vpc-id", "vpc-1"), 0);
	assert_int_equal(irfw_ec2_filter(p, "group-id", "sg-1"), 0);
	assert_int_equal(irfw_ec2_filter(p, "group-id", "sg-2"), 0);
	assert_int_equal(irfw_ec2_filter(p, "group-id", "sg-1"), 0); /* once */
	assert_json(p, "{\"Filter\":[{\"Name\":\"vpc-id\",\"Value\":[\"vpc-1\"]},"
	               "{\"Name\":\"group-id\",\"Value\":[\"sg-1\",\"sg-2\"]}]}");
	assert_int_equal(irfw_ec2_filter(NULL, "a", "b"), -1);
	assert_int_equal(irfw_ec2_filter(p, NULL, "b"), -1);
	assert_int_equal(irfw_ec2_filter(p, "a", NULL), -1);
	cJSON_Delete(p);

	/* What the query flattening makes of it: Filter.2.Value.2=sg-2. */
	p = cJSON_CreateObject();
	irfw_ec2_filter(p, "a", "1");
	irfw_ec2_filter(p, "b", "2");
	irfw_ec2_filter(p, "b", "3");
	const struct irfw_service *ec2 = irfw_service_find("ec2");
	char *q = irfw_query_body(ec2, "DescribeThings", p);
	assert_non_null(strstr(q, "Filter.1.Name=a&Filter.1.Value.1=1&Filter.2.Name=b&Filter.2.Value.1=2&"
	                          "Filter.2.Value.2=3"));
	free(q);
	cJSON_Delete(p);

	p = cJSON_CreateObject();
	assert_int_equal(irfw_ec2_tag_spec(p, "security-group", "Name", "q"), 0);
	assert_int_equal(irfw_ec2_tag_spec(p, "security-group", "irfw:quarantine", "true"), 0);
	assert_int_equal(irfw_ec2_tag_spec(p, "network-acl", "Name", "n"), 0);
	assert_int_equal(irfw_ec2_tag_spec(p, "security-group", "Name", "q2"), 0); /* replaced */
	assert_json(p,
	            "{\"TagSpecification\":[{\"ResourceType\":\"security-group\",\"Tag\":["
	            "{\"Key\":\"irfw:quarantine\",\"Value\":\"true\"},{\"Key\":\"Name\",\"Value\":\"q2\"}]},"
	            "{\"ResourceType\":\"network-acl\",\"Tag\":[{\"Key\":\"Name\",\"Value\":\"n\"}]}]}");
	assert_int_equal(irfw_ec2_tag_spec(p, "snapshot", NULL, "x"), -1);
	assert_int_equal(irfw_ec2_tag_spec(p, "snapshot", "k", NULL), -1);
	q = irfw_query_body(ec2, "CreateSecurityGroup", p);
	assert_non_null(strstr(q, "TagSpecification.1.ResourceType=security-group&"
	                          "TagSpecification.1.Tag.1.Key=irfw%3Aquarantine&"
	                          "TagSpecification.1.Tag.1.Value=true"));
	free(q);
	cJSON_Delete(p);

	p = cJSON_CreateObject();
	assert_int_equal(irfw_ec2_tag(p, "a", "1"), 0);
	assert_int_equal(irfw_ec2_tag(p, "b", NULL), 0);
	assert_int_equal(irfw_ec2_tag(p, "a", "2"), 0);
	assert_json(p, "{\"Tag\":[{\"Key\":\"b\"},{\"Key\":\"a\",\"Value\":\"2\"}]}");
	assert_int_equal(irfw_ec2_tag(p, NULL, "1"), -1);
	cJSON_Delete(p);

	/* A member of the wrong type is not overwritten. */
	p = cJSON_Parse("{\"Filter\":\"x\",\"Tag\":{}}");
	assert_int_equal(irfw_ec2_filter(p, "a", "b"), -1);
	assert_int_equal(irfw_ec2_tag(p, "a", "b"), -1);
	assert_json(p, "{\"Filter\":\"x\",\"Tag\":{}}");
	cJSON_Delete(p);
}

/* ------------------------------------------------------------------ */
/* Pagination.                                                          */

static void test_page_next(void **state)
{
	(void)state;
	static const struct {
		const char *reply, *param, *token; /* param NULL: the last page */
	} cases[] = {
	    {"{\"reservationSet\":[],\"nextToken\":\"e2\"}", "NextToken", "e2"},
	    {"{\"AutoScalingGroups\":[],\"NextToken\":\"q2\"}", "NextToken", "q2"},
	    {"{\"TargetGroups\":[],\"NextMarker\":\"m2\"}", "Marker", "m2"},
	    {"{\"Keys\":[],\"Truncated\":true,\"NextMarker\":\"k2\"}", "Marker", "k2"},
	    {"{\"Keys\":[],\"Truncated\":false,\"NextMarker\":\"k2\"}", NULL, NULL},
	    {"{\"IsTruncated\":\"true\",\"NextContinuationToken\":\"c2\",\"ContinuationToken\":\"c1\"}",
	     "ContinuationToken", "c2"},
	    {"{\"IsTruncated\":\"false\",\"ContinuationToken\":\"c1\"}", NULL, NULL},
	    {"{\"Roles\":[],\"IsTruncated\":\"true\",\"Marker\":\"i2\"}", "Marker", "i2"},
	    {"{\"Roles\":[],\"IsTruncated\":\"false\",\"Marker\":\"i2\"}", NULL, NULL},
	    {"{\"Roles\":[],\"Marker\":\"i2\"}", NULL, NULL}, /* an echoed Marker is no token */
	    {"{\"NextToken\":\"\"}", NULL, NULL},             /* an empty element */
	    {"{\"NextToken\":5}", NULL, NULL},
	    {"{}", NULL, NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		cJSON *r = cJSON_Parse(cases[i].reply);
		const char *param = NULL, *token = NULL;
		bool more = irfw_page_next(r, &param, &token);
		if (!cases[i].param) {
			assert_false(more);
		} else {
			assert_true(more);
			assert_string_equal(param, cases[i].param);
			assert_string_equal(token, cases[i].token);
		}
		cJSON_Delete(r);
	}
	const char *param, *token;
	assert_false(irfw_page_next(NULL, &param, &token));
}

/* The fake AWS: irfw_aws_request() answers from `pages`, or with an
 * error, and keeps every request it saw. */
static struct {
	const char *pages[8]; /* reply bodies (XML or JSON by service) */
	int n_pages;
	int calls;
	int fail_at;  /* call number that fails (1-based), 0: none */
	bool endless; /* every reply holds a new token */
	char seen[1200][96];
} fake;

int __wrap_irfw_aws_request(struct irfw_aws *a, const char *region, const char *service,
                            const char *operation, const cJSON *params, bool dry_run, cJSON **result,
                            struct irfw_aws_error *e, char req_id[128]);
int __wrap_irfw_aws_request(struct irfw_aws *a, const char *region, const char *service,
                            const char *operation, const cJSON *params, bool dry_run, cJSON **result,
                            struct irfw_aws_error *e, char req_id[128])
{
	(void)a;
	(void)region;
	(void)dry_run;
	int n = fake.calls++;
	char *p = cJSON_PrintUnformatted(params);
	if (n < 1200)
		snprintf(fake.seen[n], sizeof(fake.seen[n]), "%s %s", operation, p ? p : "null");
	free(p);
	memset(e, 0, sizeof(*e));
	snprintf(req_id, 128, "req-%d", n + 1);
	if (fake.fail_at == n + 1) {
		e->http_status = 400;
		snprintf(e->code, sizeof(e->code), "AccessDenied");
		snprintf(e->message, sizeof(e->message), "no");
		snprintf(e->request_id, sizeof(e->request_id), "req-%d", n + 1);
		return -1;
	}
	if (fake.endless) {
		char body[128];
		snprintf(body, sizeof(body), "{\"NextToken\":\"t%d\"}", n + 1);
		*result = cJSON_Parse(body);
		return 0;
	}
	const char *body = fake.pages[n < fake.n_pages ? n : fake.n_pages - 1];
	*result = body[0] == '<' ? xml(body) : cJSON_Parse(body);
	(void)service;
	return 0;
}

/* A step's calls carry its priority, so they come through _ex. */
int __wrap_irfw_aws_request_ex(struct irfw_aws *a, const char *region, const char *service,
                               const char *operation, const cJSON *params, bool dry_run, unsigned flags,
                               cJSON **result, struct irfw_aws_error *e, char req_id[128]);
int __wrap_irfw_aws_request_ex(struct irfw_aws *a, const char *region, const char *service,
                               const char *operation, const cJSON *params, bool dry_run, unsigned flags,
                               cJSON **result, struct irfw_aws_error *e, char req_id[128])
{
	(void)flags;
	return __wrap_irfw_aws_request(a, region, service, operation, params, dry_run, result, e, req_id);
}

struct world {
	struct irfw_run run;
	struct irfw_target t;
	struct irfw_module mod;
	struct irfw_step step;
	struct irfw_target *targets[1];
};

static void world_init(struct world *w)
{
	memset(w, 0, sizeof(*w));
	memset(&fake, 0, sizeof(fake));
	w->run.aws = (struct irfw_aws *)&fake; /* never dereferenced: the fake answers */
	w->run.resolved_region = "us-east-1";
	w->mod.name = "test";
	w->mod.vt.abi_major = IRFW_ABI_MAJOR;
	w->mod.vt.abi_minor = IRFW_ABI_MINOR;
	w->step.name = "test";
	w->step.mod = &w->mod;
	w->t.run = &w->run;
	w->t.id = "i-1";
	w->t.cur = &w->step;
	w->targets[0] = &w->t;
	w->run.batch.run = &w->run;
	w->run.batch.targets = w->targets;
	w->run.batch.n = 1;
}

/* Page callback: collects the ids it sees into ctx (a cJSON array) and
 * stops after `stop_after` pages when that is set. */
struct seen {
	cJSON *ids;
	int pages, stop_after;
};

static int collect(const cJSON *res, struct seen *s)
{
	const cJSON *g;
	s->pages++;
	cJSON_ArrayForEach(g, get(res, "AutoScalingGroups"))
	{
		cJSON_AddItemToArray(s->ids, cJSON_CreateString(irfw_json_str(g, "AutoScalingGroupName")));
	}
	return s->stop_after && s->pages == s->stop_after ? 7 : 0;
}

static int on_page(irfw_target *t, const cJSON *res, void *ctx)
{
	(void)t;
	return collect(res, ctx);
}

static int on_batch_page(irfw_batch *b, const cJSON *res, void *ctx)
{
	(void)b;
	return collect(res, ctx);
}

#define ASG_PAGE(name, next)                                                                                 \
	"<DescribeAutoScalingGroupsResponse><DescribeAutoScalingGroupsResult><AutoScalingGroups><member>"    \
	"<AutoScalingGroupName>" name "</AutoScalingGroupName></member></AutoScalingGroups>" next            \
	"</DescribeAutoScalingGroupsResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>"    \
	"</DescribeAutoScalingGroupsResponse>"

static void test_paginate(void **state)
{
	(void)state;
	struct world w;
	struct seen s = {0};
	world_init(&w);
	fake.pages[0] = ASG_PAGE("a", "<NextToken>t1</NextToken>");
	fake.pages[1] = ASG_PAGE("b", "<NextToken>t2</NextToken>");
	fake.pages[2] = ASG_PAGE("c", "");
	fake.n_pages = 3;
	s.ids = cJSON_CreateArray();
	cJSON *params = cJSON_Parse("{\"MaxRecords\":1,\"NextToken\":\"stale\"}");
	cJSON *before = cJSON_Duplicate(params, true);

	/* Through the real irfw_aws_call_in: the results are neutral, so the
	 * token is found at the top. */
	assert_int_equal(
	    irfw_aws_paginate(&w.t, "autoscaling", "DescribeAutoScalingGroups", params, on_page, &s), 0);
	assert_int_equal(fake.calls, 3);
	assert_int_equal(s.pages, 3);
	assert_json(s.ids, "[\"a\",\"b\",\"c\"]");
	assert_string_equal(fake.seen[0],
	                    "DescribeAutoScalingGroups {\"MaxRecords\":1,\"NextToken\":\"stale\"}");
	assert_string_equal(fake.seen[1],
	                    "DescribeAutoScalingGroups {\"MaxRecords\":1,\"NextToken\":\"t1\"}");
	assert_string_equal(fake.seen[2],
	                    "DescribeAutoScalingGroups {\"MaxRecords\":1,\"NextToken\":\"t2\"}");
	assert_true(cJSON_Compare(params, before, true)); /* the caller's params are not changed */
	assert_string_equal(irfw_aws_last_request_id(&w.t), "req-3");

	/* The callback stops it, with its own value. */
	world_init(&w);
	fake.pages[0] = ASG_PAGE("a", "<NextToken>t1</NextToken>");
	fake.pages[1] = ASG_PAGE("b", "<NextToken>t2</NextToken>");
	fake.n_pages = 2;
	cJSON_Delete(s.ids);
	s = (struct seen){.ids = cJSON_CreateArray(), .stop_after = 2};
	assert_int_equal(
	    irfw_aws_paginate(&w.t, "autoscaling", "DescribeAutoScalingGroups", NULL, on_page, &s), 7);
	assert_int_equal(fake.calls, 2);

	/* An AWS error on page 2: -1, and the error is the target's. */
	world_init(&w);
	fake.pages[0] = ASG_PAGE("a", "<NextToken>t1</NextToken>");
	fake.n_pages = 1;
	fake.fail_at = 2;
	cJSON_Delete(s.ids);
	s = (struct seen){.ids = cJSON_CreateArray()};
	assert_int_equal(irfw_aws_paginate_in(&w.t, "eu-west-1", "autoscaling", "DescribeAutoScalingGroups",
	                                      NULL, on_page, &s),
	                 -1);
	assert_int_equal(s.pages, 1);
	assert_string_equal(irfw_aws_error_code(&w.t), "AccessDenied");
	assert_string_equal(irfw_aws_request_id(&w.t), "req-2");

	/* A service that ignores the token: stopped, named. */
	world_init(&w);
	fake.pages[0] = ASG_PAGE("a", "<NextToken>same</NextToken>");
	fake.n_pages = 1;
	cJSON_Delete(s.ids);
	s = (struct seen){.ids = cJSON_CreateArray()};
	assert_int_equal(
	    irfw_aws_paginate(&w.t, "autoscaling", "DescribeAutoScalingGroups", NULL, on_page, &s), -1);
	assert_int_equal(fake.calls, 2);
	assert_string_equal(irfw_aws_error_code(&w.t), "PaginationLoop");

	/* Endless pages: bounded. */
	world_init(&w);
	fake.endless = true;
	cJSON_Delete(s.ids);
	s = (struct seen){.ids = cJSON_CreateArray()};
	assert_int_equal(irfw_aws_paginate(&w.t, "ssm", "DescribeParameters", NULL, on_page, &s), -1);
	assert_int_equal(fake.calls, IRFW_MAX_PAGES);
	assert_string_equal(irfw_aws_error_code(&w.t), "PaginationLimit");
	assert_string_equal(fake.seen[IRFW_MAX_PAGES - 1], "DescribeParameters {\"NextToken\":\"t999\"}");

	/* EC2's nextToken and ELB's NextMarker go back by their request names. */
	world_init(&w);
	fake.pages[0] = "<DescribeInstancesResponse><reservationSet/><nextToken>e1</nextToken>"
	                "</DescribeInstancesResponse>";
	fake.pages[1] = "<DescribeInstancesResponse><reservationSet/></DescribeInstancesResponse>";
	fake.n_pages = 2;
	assert_int_equal(irfw_aws_paginate(&w.t, "ec2", "DescribeInstances", NULL, on_page, &s), 0);
	assert_string_equal(fake.seen[1], "DescribeInstances {\"NextToken\":\"e1\"}");
	world_init(&w);
	fake.pages[0] =
	    "<DescribeTargetGroupsResponse><DescribeTargetGroupsResult><TargetGroups/>"
	    "<NextMarker>m1</NextMarker></DescribeTargetGroupsResult></DescribeTargetGroupsResponse>";
	fake.pages[1] = "<DescribeTargetGroupsResponse><DescribeTargetGroupsResult><TargetGroups/>"
	                "</DescribeTargetGroupsResult></DescribeTargetGroupsResponse>";
	fake.n_pages = 2;
	assert_int_equal(
	    irfw_aws_paginate(&w.t, "elasticloadbalancing", "DescribeTargetGroups", NULL, on_page, &s), 0);
	assert_string_equal(fake.seen[1], "DescribeTargetGroups {\"Marker\":\"m1\"}");

	/* The batch's: the same loop, errors logged. */
	world_init(&w);
	fake.pages[0] = ASG_PAGE("a", "<NextToken>t1</NextToken>");
	fake.pages[1] = ASG_PAGE("b", "");
	fake.n_pages = 2;
	cJSON_Delete(s.ids);
	s = (struct seen){.ids = cJSON_CreateArray()};
	assert_int_equal(irfw_batch_aws_paginate(&w.run.batch, NULL, "autoscaling",
	                                         "DescribeAutoScalingGroups", NULL, on_batch_page, &s),
	                 0);
	assert_json(s.ids, "[\"a\",\"b\"]");
	world_init(&w);
	fake.pages[0] = ASG_PAGE("a", "<NextToken>t1</NextToken>");
	fake.n_pages = 1;
	fake.fail_at = 2;
	assert_int_equal(irfw_batch_aws_paginate(&w.run.batch, NULL, "autoscaling",
	                                         "DescribeAutoScalingGroups", NULL, on_batch_page, &s),
	                 -1);

	assert_int_equal(irfw_aws_paginate(NULL, "ec2", "DescribeInstances", NULL, on_page, &s), -1);
	assert_int_equal(irfw_aws_paginate(&w.t, "ec2", "DescribeInstances", NULL, NULL, &s), -1);
	cJSON_Delete(s.ids);
	cJSON_Delete(params);
	cJSON_Delete(before);
}

/* A module built for 1.1 gets the wrapper through irfw_aws_call too. */
static void test_call_shape_by_module(void **state)
{
	(void)state;
	struct world w;
	world_init(&w);
	fake.pages[0] = asg_one;
	fake.n_pages = 1;
	cJSON *res = NULL;
	assert_int_equal(irfw_aws_call(&w.t, "autoscaling", "DescribeAutoScalingGroups", NULL, &res), 0);
	assert_non_null(get(res, "AutoScalingGroups"));
	assert_null(get(res, "ResponseMetadata"));
	cJSON_Delete(res);
	w.mod.vt.abi_minor = 1;
	assert_int_equal(irfw_aws_call(&w.t, "autoscaling", "DescribeAutoScalingGroups", NULL, &res), 0);
	assert_non_null(get(res, "DescribeAutoScalingGroupsResult"));
	assert_non_null(get(res, "ResponseMetadata"));
	cJSON_Delete(res);
	assert_int_equal(
	    irfw_batch_aws_call(&w.run.batch, NULL, "autoscaling", "DescribeAutoScalingGroups", NULL, &res),
	    0);
	assert_non_null(get(res, "DescribeAutoScalingGroupsResult"));
	cJSON_Delete(res);
	w.mod.vt.abi_minor = 2;
	assert_int_equal(
	    irfw_batch_aws_call(&w.run.batch, NULL, "autoscaling", "DescribeAutoScalingGroups", NULL, &res),
	    0);
	assert_non_null(get(res, "AutoScalingGroups"));
	cJSON_Delete(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_ec2),
	    cmocka_unit_test(test_query),
	    cmocka_unit_test(test_s3),
	    cmocka_unit_test(test_json_and_old_modules),
	    cmocka_unit_test(test_getters),
	    cmocka_unit_test(test_iso8601),
	    cmocka_unit_test(test_builders),
	    cmocka_unit_test(test_ec2_readers),
	    cmocka_unit_test(test_page_next),
	    cmocka_unit_test(test_paginate),
	    cmocka_unit_test(test_call_shape_by_module),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
