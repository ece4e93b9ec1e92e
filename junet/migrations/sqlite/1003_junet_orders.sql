-- Lookups the order checks make on every order (host names are compared
-- case-insensitively; subnets by address and mask). Indexes only: the
-- columns of the six thesis tables stay as they are.
CREATE INDEX n_devname_lower ON n_devname (LOWER(DN_NAME), LOWER(DOMAIN));
CREATE INDEX x_device_label_lower ON x_device (LOWER(DV_LABEL));
CREATE INDEX n_netname_net ON n_netname (NN_NET_ADDR, SUBNET_MASK);
CREATE INDEX x_port_hardw_addr_lower ON x_port (LOWER(HARDW_ADDR));
CREATE INDEX x_port_gua ON x_port (GUA);
CREATE INDEX auftrag_deputies_device ON auftrag_deputies (DEVICE);
