-- Runs before 10-customers.sql (testenv/customers.sql, the demo's demo.CUSTOMERS) on the first
-- start of the mariadb container (docker-entrypoint-initdb.d, files in name order).
-- Debezium's connector user with the grants the MariaDB connector documents (BINLOG MONITOR is
-- MariaDB's name for what MySQL calls REPLICATION CLIENT; LOCK TABLES for snapshots without a
-- global read lock). MariaDB's syntax: MySQL's "IDENTIFIED WITH mysql_native_password BY" is
-- a syntax error here, and MariaDB's default authentication is mysql_native_password anyway.
CREATE USER IF NOT EXISTS 'debezium'@'%' IDENTIFIED BY 'dbz';
GRANT SELECT, RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT, BINLOG MONITOR, LOCK TABLES ON *.* TO 'debezium'@'%';
FLUSH PRIVILEGES;
