-- Whose rights a deputyship hands on (thesis rule 3: an admin names
-- deputies for *their* devices). For one device (DEVICE) and for all
-- devices of an admin (DEVICE and ORG null) it is that admin: the device's
-- admin when the deputyship was named, or the admin who named it. A
-- deputyship for one device holds only while the device has that admin, so
-- it ends with the admin's tenure, as one for all devices already did (an
-- order that changes the admin also deletes it). NULL for an org unit's.
ALTER TABLE auftrag_deputies ADD COLUMN ADMIN INTEGER;

-- Deputyships named before: one for all devices is its namer's. One for a
-- device named by staff or an IT officer hands on the device's present
-- admin's rights; one named by anybody else was named by the device's
-- admin then, and holds only while that person still is.
UPDATE auftrag_deputies SET ADMIN = NAMED_BY WHERE DEVICE IS NULL AND ORG IS NULL;
UPDATE auftrag_deputies SET ADMIN = CASE
    WHEN EXISTS (SELECT 1 FROM auftrag_staff s WHERE s.person = CAST(auftrag_deputies.NAMED_BY AS TEXT))
      OR EXISTS (SELECT 1 FROM auftrag_it_officers i WHERE i.PERS_KEY = auftrag_deputies.NAMED_BY)
    THEN (SELECT l.OBJ_ID_L FROM x_link l
          WHERE l.OBJ_ID_H = auftrag_deputies.DEVICE AND l.CLASS_L = 'ADMIN')
    ELSE NAMED_BY
END
WHERE DEVICE IS NOT NULL;
