DROP TABLE claim_replies;
DROP TABLE claim_quotas;
