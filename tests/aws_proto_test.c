/* aws_proto_test.c - services, endpoints and request serialisation. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "aws/client.h"
#include "aws/protocol.h"

static void test_endpoints(void **state)
{
	(void)state;
	char *url, *reg;
	const struct irfw_service *ec2 = irfw_service_find("ec2"), *iam = irfw_service_find("iam");
	assert_int_equal(irfw_endpoint_resolve(ec2, "eu-west-1", NULL, &url, &reg), 0);
	assert_string_equal(url, "https://ec2.eu-west-1.amazonaws.com");
	assert_string_equal(reg, "eu-west-1");
	free(url), free(reg);
	assert_int_equal(irfw_endpoint_resolve(ec2, "cn-north-1", NULL, &url, &reg), 0);
	assert_string_equal(url, "https://ec2.cn-north-1.amazonaws.com.cn");
	free(url), free(reg);
	assert_int_equal(irfw_endpoint_resolve(iam, "eu-west-1", NULL, &url, &reg), 0);
	assert_string_equal(url, "https://iam.amazonaws.com");
	assert_string_equal(reg, "us-east-1");
	free(url), free(reg);
	assert_int_equal(irfw_endpoint_resolve(iam, "cn-northwest-1", NULL, &url, &reg), 0);
	assert_string_equal(url, "https://iam.cn-north-1.amazonaws.com.cn");
	assert_string_equal(reg, "cn-north-1");
	free(url), free(reg);
	assert_int_equal(irfw_endpoint_resolve(iam, "us-gov-east-1", NULL, &url, &reg), 0);
	assert_string_equal(url, "https://iam.us-gov.amazonaws.com");
	assert_string_equal(reg, "us-gov-west-1");
	free(url), free(reg);
	const struct irfw_service *elb = irfw_service_find("elb");
	assert_int_equal(irfw_endpoint_resolve(elb, "us-west-2", "http://127.0.0.1:5000/", &url, &reg), 0);
	assert_string_equal(url, "http://127.0.0.1:5000");
	assert_string_equal(reg, "us-west-2");
	assert_string_equal(elb->signing_name, "elasticloadbalancing");
	free(url), free(reg);
	assert_null(irfw_service_find("lambda"));
}

static void test_query_ec2(void **state)
{
	(void)state;
	cJSON *p = cJSON_Parse("{\"InstanceId\":[\"i-1\",\"i-2\"],\"Filter\":[{\"Name\":\"tag:irfw "
	                       "case\",\"Value\":[\"a=b&c\"]}],"
	                       "\"DisableApiTermination\":{\"Value\":true},\"MaxResults\":5}");
	char *body = irfw_query_body(irfw_service_find("ec2"), "DescribeInstances", p);
	assert_string_equal(body,
	                    "Action=DescribeInstances&Version=2016-11-15&InstanceId.1=i-1&InstanceId.2=i-2"
	                    "&Filter.1.Name=tag%3Airfw+case&Filter.1.Value.1=a%3Db%26c"
	                    "&DisableApiTermination.Value=true&MaxResults=5");
	free(body);
	cJSON_Delete(p);
}

static void test_query_members(void **state)
{
	(void)state;
	cJSON *p = cJSON_Parse(
	    "{\"InstanceIds\":[\"i-1\"],\"AutoScalingGroupName\":\"web+1 ~x\","
	    "\"ShouldDecrementDesiredCapacity\":false,\"Targets\":[{\"Id\":\"i-1\",\"Port\":80}]}");
	char *body = irfw_query_body(irfw_service_find("autoscaling"), "DetachInstances", p);
	assert_string_equal(body, "Action=DetachInstances&Version=2011-01-01&InstanceIds.member.1=i-1"
	                          "&AutoScalingGroupName=web%2B1+~x&ShouldDecrementDesiredCapacity=false"
	                          "&Targets.member.1.Id=i-1&Targets.member.1.Port=80");
	free(body);
	cJSON_Delete(p);
	body = irfw_query_body(irfw_service_find("sts"), "GetCallerIdentity", NULL);
	assert_string_equal(body, "Action=GetCallerIdentity&Version=2011-06-15");
	free(body);
}

static void test_mutates(void **state)
{
	(void)state;
	assert_false(irfw_operation_mutates("DescribeInstances"));
	assert_false(irfw_operation_mutates("GetConsoleOutput"));
	assert_false(irfw_operation_mutates("HeadObject"));
	assert_true(irfw_operation_mutates("ModifyInstanceAttribute"));
	assert_true(irfw_operation_mutates("Getaway"));
	assert_true(irfw_operation_mutates("PutObject"));
	/* What a dry run may send. */
	assert_true(irfw_operation_dry_sendable("ec2", "DescribeInstances"));
	assert_true(irfw_operation_dry_sendable("ec2", "ModifyNetworkInterfaceAttribute"));
	assert_true(irfw_operation_dry_sendable("s3", "HeadObject"));
	assert_false(irfw_operation_dry_sendable("ec2", "DisassociateIamInstanceProfile"));
	assert_false(irfw_operation_dry_sendable("ec2", "ReplaceIamInstanceProfileAssociation"));
	assert_false(irfw_operation_dry_sendable("sns", "Publish"));
	assert_false(irfw_operation_dry_sendable("autoscaling", "DetachInstances"));
}

static void test_s3(void **state)
{
	(void)state;
	char err[256];
	struct irfw_s3_request rq;
	cJSON *p = cJSON_Parse("{\"Bucket\":\"evidence-1\",\"Key\":\"IR 1/i-1/a+b.json\",\"Body\":\"{}\","
	                       "\"ServerSideEncryption\":\"aws:kms\",\"SSEKMSKeyId\":\"alias/ir\","
	                       "\"Metadata\":{\"sha256\":\"x\"}}");
	assert_int_equal(irfw_s3_build("PutObject", p, false, &rq, err, sizeof(err)), 0);
	assert_string_equal(rq.method, "PUT");
	assert_string_equal(rq.host_bucket, "evidence-1");
	assert_string_equal(rq.path, "/IR 1/i-1/a+b.json");
	assert_null(rq.query);
	assert_non_null(strstr(rq.headers.data, "x-amz-server-side-encryption: aws:kms\n"));
	assert_non_null(strstr(rq.headers.data, "x-amz-server-side-encryption-aws-kms-key-id: alias/ir\n"));
	assert_non_null(strstr(rq.headers.data, "x-amz-meta-sha256: x\n"));
	assert_int_equal(rq.body_len, 2);
	irfw_s3_request_free(&rq);

	/* Path style: forced, or a bucket name that cannot be a TLS host label. */
	assert_int_equal(irfw_s3_build("PutObject", p, true, &rq, err, sizeof(err)), 0);
	assert_null(rq.host_bucket);
	assert_string_equal(rq.path, "/evidence-1/IR 1/i-1/a+b.json");
	irfw_s3_request_free(&rq);
	cJSON_Delete(p);
	assert_false(irfw_s3_bucket_dns_ok("s3-access-logs.123456789012-us-east-1"));
	assert_true(irfw_s3_bucket_dns_ok("evidence-1"));

	p = cJSON_Parse("{\"Bucket\":\"b-1\",\"Key\":\"k\",\"UploadId\":\"a/b=\",\"PartNumber\":3}");
	assert_int_equal(irfw_s3_build("UploadPart", p, false, &rq, err, sizeof(err)), 0);
	assert_string_equal(rq.query, "partNumber=3&uploadId=a%2Fb%3D");
	irfw_s3_request_free(&rq);
	assert_int_equal(irfw_s3_build("CreateMultipartUpload", p, false, &rq, err, sizeof(err)), 0);
	assert_string_equal(rq.method, "POST");
	assert_string_equal(rq.query, "uploads=");
	irfw_s3_request_free(&rq);
	cJSON_Delete(p);

	p = cJSON_Parse("{\"Bucket\":\"b-1\",\"Key\":\"k\",\"UploadId\":\"u\",\"Parts\":[{\"PartNumber\":1,"
	                "\"ETag\":\"\\\"e<1>\\\"\"}]}");
	assert_int_equal(irfw_s3_build("CompleteMultipartUpload", p, false, &rq, err, sizeof(err)), 0);
	assert_non_null(
	    strstr(rq.body, "<Part><PartNumber>1</PartNumber><ETag>&quot;e&lt;1&gt;&quot;</ETag></Part>"));
	irfw_s3_request_free(&rq);
	cJSON_Delete(p);

	p = cJSON_Parse("{\"Bucket\":\"b-1\"}");
	assert_int_equal(irfw_s3_build("PutObject", p, false, &rq, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "needs Bucket and Key"));
	assert_int_equal(irfw_s3_build("DeleteBucket", p, false, &rq, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not supported"));
	cJSON_Delete(p);

	cJSON *res = cJSON_CreateObject();
	irfw_s3_response_header(res, "x-amz-version-id", "v1");
	irfw_s3_response_header(res, "etag", "\"abc\"");
	irfw_s3_response_header(res, "x-unrelated", "z");
	assert_string_equal(cJSON_GetObjectItem(res, "VersionId")->valuestring, "v1");
	assert_string_equal(cJSON_GetObjectItem(res, "ETag")->valuestring, "\"abc\"");
	assert_int_equal(cJSON_GetArraySize(res), 2);
	cJSON_Delete(res);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_endpoints),
	    cmocka_unit_test(test_query_ec2),
	    cmocka_unit_test(test_query_members),
	    cmocka_unit_test(test_mutates),
	    cmocka_unit_test(test_s3),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
