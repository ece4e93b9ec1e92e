-- Host names are looked up case-insensitively (`zam2212.ZAM.kfa-juelich.de`
-- names the same interface); expression indexes keep those lookups off full
-- scans. Indexes only: the thesis tables' columns stay as they are.
CREATE INDEX IF NOT EXISTS n_devname_lower ON n_devname (LOWER(DN_NAME), LOWER(DOMAIN));
CREATE INDEX IF NOT EXISTS x_device_label_lower ON x_device (LOWER(DV_LABEL));

-- Deputyships are looked up by device, by the admin who named them, and by org unit.
CREATE INDEX IF NOT EXISTS auftrag_deputies_device ON auftrag_deputies (DEVICE);
CREATE INDEX IF NOT EXISTS auftrag_deputies_named_by ON auftrag_deputies (NAMED_BY);
CREATE INDEX IF NOT EXISTS auftrag_deputies_org ON auftrag_deputies (ORG);
