"""The push path: CloudWatch Logs subscription events read from a Kinesis Data Stream.

Several aws-wodle processes on one stream share its shards through leases in a DynamoDB
table, in the model of the Kinesis Client Library: ``payload`` decodes records,
``leases`` keeps the lease table, ``balance`` decides which leases to take, ``shards``
lists shards and holds the parent-first rule, ``reader`` reads one shard, ``worker`` runs
one source, and ``aws`` is the only module of the package that touches botocore.
"""
