-- Runs before 10-customers.sql (testenv/customers.sql, the demo's demo.CUSTOMERS) on the first
-- start of the mysql container (docker-entrypoint-initdb.d, files in name order).
-- Users as in the 2021 ratings demo (build-a-streaming-pipeline): Debezium's connector user
-- with the grants the MySQL connector documents (LOCK TABLES for snapshots without global
-- read lock), mysql_native_password so that no TLS or RSA key exchange is needed.
CREATE USER IF NOT EXISTS 'debezium'@'%' IDENTIFIED WITH mysql_native_password BY 'dbz';
GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT, LOCK TABLES ON *.* TO 'debezium'@'%';
FLUSH PRIVILEGES;
