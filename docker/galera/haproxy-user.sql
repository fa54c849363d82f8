-- HAProxy's health check account (docker/haproxy/haproxy.cfg logs in as `haproxy` with an
-- empty password and only reads the node's status): no password, no privilege, and only
-- from the `galera` network of compose.cluster.yml, which only HAProxy and the nodes join.
-- Run once, on galera1 when it initialises; the other nodes receive it with the data.
CREATE USER IF NOT EXISTS 'haproxy'@'172.30.89.0/255.255.255.0';
