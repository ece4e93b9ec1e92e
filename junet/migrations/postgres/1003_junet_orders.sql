-- Lookups the order checks make on every order (host names are compared
-- case-insensitively; subnets by address and mask). Indexes only: the
-- columns of the six thesis tables stay as they are.
CREATE INDEX n_devname_lower ON n_devname (LOWER(DN_NAME), LOWER(DOMAIN));
CREATE INDEX x_device_label_lower ON x_device (LOWER(DV_LABEL));
CREATE INDEX n_netname_net ON n_netname (NN_NET_ADDR, SUBNET_MASK);
CREATE INDEX x_port_hardw_addr_lower ON x_port (LOWER(HARDW_ADDR));
CREATE INDEX x_port_gua ON x_port (GUA);
CREATE INDEX auftrag_deputies_device ON auftrag_deputies (DEVICE);

-- Object ids (DV_OBJ_ID, PT_OBJ_ID) of devices and ports that orders
-- register: concurrent orders never pick the same. Above every id already
-- in the tables and above the ranges of the demo and generated data.
CREATE SEQUENCE auftrag_object_id START WITH 100000000;
SELECT setval('auftrag_object_id', GREATEST(
    100000000,
    (SELECT COALESCE(MAX(DV_OBJ_ID), 0) FROM x_device),
    (SELECT COALESCE(MAX(PT_OBJ_ID), 0) FROM x_port)));
