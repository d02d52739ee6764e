/* names.h - the syntax of AWS names and ids an operator types. */
#ifndef IRFW_AWS_NAMES_H
#define IRFW_AWS_NAMES_H

#include <stdbool.h>

bool irfw_valid_instance_id(const char *s); /* i- and 8 or 17 lowercase hex digits */
bool irfw_valid_sg_id(const char *s);       /* sg- and 8 or 17 lowercase hex digits */
bool irfw_valid_region(const char *s);      /* us-east-1, us-gov-west-1 */
bool irfw_valid_bucket(const char *s);      /* S3 general purpose bucket names */
bool irfw_valid_topic_arn(const char *s);   /* arn:PARTITION:sns:REGION:ACCOUNT:NAME */

#endif /* IRFW_AWS_NAMES_H */
