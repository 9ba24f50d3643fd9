PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE studies (
	study_id INTEGER NOT NULL, 
	study_name VARCHAR(512) NOT NULL, 
	PRIMARY KEY (study_id)
);
INSERT INTO studies VALUES(1,'s1');
CREATE TABLE version_info (
	version_info_id INTEGER NOT NULL, 
	schema_version INTEGER, 
	library_version VARCHAR(256), 
	PRIMARY KEY (version_info_id), 
	CHECK (version_info_id=1)
);
INSERT INTO version_info VALUES(1,12,'5.0.0');
CREATE TABLE study_directions (
	study_direction_id INTEGER NOT NULL, 
	direction VARCHAR(8) NOT NULL, 
	study_id INTEGER NOT NULL, 
	objective INTEGER NOT NULL, 
	PRIMARY KEY (study_direction_id), 
	UNIQUE (study_id, objective), 
	FOREIGN KEY(study_id) REFERENCES studies (study_id)
);
INSERT INTO study_directions VALUES(1,'MAXIMIZE',1,0);
INSERT INTO study_directions VALUES(2,'MINIMIZE',1,1);
CREATE TABLE study_user_attributes (
	study_user_attribute_id INTEGER NOT NULL, 
	study_id INTEGER, 
	"key" VARCHAR(512), 
	value_json TEXT, 
	PRIMARY KEY (study_user_attribute_id), 
	UNIQUE (study_id, "key"), 
	FOREIGN KEY(study_id) REFERENCES studies (study_id)
);
INSERT INTO study_user_attributes VALUES(1,1,'nas_search_id','1');
INSERT INTO study_user_attributes VALUES(2,1,'space','"einspace"');
INSERT INTO study_user_attributes VALUES(3,1,'dataset','"digits"');
INSERT INTO study_user_attributes VALUES(4,1,'seed','7');
INSERT INTO study_user_attributes VALUES(5,1,'config','{"epochs": 3, "bad": NaN}');
INSERT INTO study_user_attributes VALUES(6,1,'status','"running"');
INSERT INTO study_user_attributes VALUES(7,1,'budget','9');
CREATE TABLE study_system_attributes (
	study_system_attribute_id INTEGER NOT NULL, 
	study_id INTEGER, 
	"key" VARCHAR(512), 
	value_json TEXT, 
	PRIMARY KEY (study_system_attribute_id), 
	UNIQUE (study_id, "key"), 
	FOREIGN KEY(study_id) REFERENCES studies (study_id)
);
INSERT INTO study_system_attributes VALUES(1,1,'study:metric_names','["val_acc", "params"]');
CREATE TABLE trials (
	trial_id INTEGER NOT NULL, 
	number INTEGER, 
	study_id INTEGER, 
	state VARCHAR(8) NOT NULL, 
	datetime_start DATETIME, 
	datetime_complete DATETIME, 
	PRIMARY KEY (trial_id), 
	FOREIGN KEY(study_id) REFERENCES studies (study_id)
);
INSERT INTO trials VALUES(1,0,1,'COMPLETE','2026-12-01 15:52:10.021263','2026-12-01 15:52:10.860464');
INSERT INTO trials VALUES(2,1,1,'PRUNED','2026-12-01 15:52:10.881097','2026-12-01 15:52:11.190350');
INSERT INTO trials VALUES(3,2,1,'FAIL','2026-12-01 15:52:11.201541','2026-12-01 15:52:11.324834');
INSERT INTO trials VALUES(4,3,1,'COMPLETE','2026-12-01 15:52:11.340204','2026-12-01 15:52:11.496564');
CREATE TABLE trial_user_attributes (
	trial_user_attribute_id INTEGER NOT NULL, 
	trial_id INTEGER, 
	"key" VARCHAR(512), 
	value_json TEXT, 
	PRIMARY KEY (trial_user_attribute_id), 
	UNIQUE (trial_id, "key"), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO trial_user_attributes VALUES(1,1,'hash','"aa11"');
INSERT INTO trial_user_attributes VALUES(2,1,'params','1000');
INSERT INTO trial_user_attributes VALUES(3,1,'flops','20000');
INSERT INTO trial_user_attributes VALUES(4,1,'derivation','"(sequential aa11)"');
INSERT INTO trial_user_attributes VALUES(5,1,'arch','"A"');
INSERT INTO trial_user_attributes VALUES(6,1,'val_acc','0.8');
INSERT INTO trial_user_attributes VALUES(7,1,'test_acc','0.79');
INSERT INTO trial_user_attributes VALUES(8,1,'score_synflow','1000.0');
INSERT INTO trial_user_attributes VALUES(9,1,'score_nwot','1.0');
INSERT INTO trial_user_attributes VALUES(10,1,'score_grasp','NaN');
INSERT INTO trial_user_attributes VALUES(11,1,'nas_trial_id','1');
INSERT INTO trial_user_attributes VALUES(12,1,'generation','0');
INSERT INTO trial_user_attributes VALUES(13,1,'status','"ok"');
INSERT INTO trial_user_attributes VALUES(14,1,'resources','{"cpu": 1, "gpu": 0}');
INSERT INTO trial_user_attributes VALUES(15,2,'hash','"bb22"');
INSERT INTO trial_user_attributes VALUES(16,2,'params','500');
INSERT INTO trial_user_attributes VALUES(17,2,'flops','9000000000');
INSERT INTO trial_user_attributes VALUES(18,2,'derivation','"(sequential bb22)"');
INSERT INTO trial_user_attributes VALUES(19,2,'arch','null');
INSERT INTO trial_user_attributes VALUES(20,2,'val_acc','0.6');
INSERT INTO trial_user_attributes VALUES(21,2,'test_acc','0.59');
INSERT INTO trial_user_attributes VALUES(22,2,'score_synflow','500.0');
INSERT INTO trial_user_attributes VALUES(23,2,'score_nwot','1.0');
INSERT INTO trial_user_attributes VALUES(24,2,'score_grasp','NaN');
INSERT INTO trial_user_attributes VALUES(25,2,'nas_trial_id','2');
INSERT INTO trial_user_attributes VALUES(26,2,'generation','0');
INSERT INTO trial_user_attributes VALUES(27,2,'status','"stopped"');
INSERT INTO trial_user_attributes VALUES(28,2,'resources','{"cpu": 1}');
INSERT INTO trial_user_attributes VALUES(29,3,'hash','"cc33"');
INSERT INTO trial_user_attributes VALUES(30,3,'params','2000');
INSERT INTO trial_user_attributes VALUES(31,3,'flops','40000');
INSERT INTO trial_user_attributes VALUES(32,3,'derivation','"(sequential cc33)"');
INSERT INTO trial_user_attributes VALUES(33,3,'arch','null');
INSERT INTO trial_user_attributes VALUES(34,3,'val_acc','0.3');
INSERT INTO trial_user_attributes VALUES(35,3,'test_acc','0.29');
INSERT INTO trial_user_attributes VALUES(36,3,'score_synflow','2000.0');
INSERT INTO trial_user_attributes VALUES(37,3,'score_nwot','-Infinity');
INSERT INTO trial_user_attributes VALUES(38,3,'score_grasp','NaN');
INSERT INTO trial_user_attributes VALUES(39,3,'nas_trial_id','3');
INSERT INTO trial_user_attributes VALUES(40,3,'generation','1');
INSERT INTO trial_user_attributes VALUES(41,3,'status','"failed"');
INSERT INTO trial_user_attributes VALUES(42,3,'resources','{"cpu": 1}');
INSERT INTO trial_user_attributes VALUES(43,3,'error','"NaN loss at epoch 2 step 5"');
INSERT INTO trial_user_attributes VALUES(44,4,'hash','"dd44"');
INSERT INTO trial_user_attributes VALUES(45,4,'params','300');
INSERT INTO trial_user_attributes VALUES(46,4,'flops','1000');
INSERT INTO trial_user_attributes VALUES(47,4,'derivation','"(sequential dd44)"');
INSERT INTO trial_user_attributes VALUES(48,4,'arch','null');
INSERT INTO trial_user_attributes VALUES(49,4,'val_acc','0.65');
INSERT INTO trial_user_attributes VALUES(50,4,'test_acc','0.64');
INSERT INTO trial_user_attributes VALUES(51,4,'score_synflow','300.0');
INSERT INTO trial_user_attributes VALUES(52,4,'score_nwot','1.0');
INSERT INTO trial_user_attributes VALUES(53,4,'score_grasp','NaN');
INSERT INTO trial_user_attributes VALUES(54,4,'nas_trial_id','4');
INSERT INTO trial_user_attributes VALUES(55,4,'generation','1');
INSERT INTO trial_user_attributes VALUES(56,4,'status','"ok"');
INSERT INTO trial_user_attributes VALUES(57,4,'resources','{"cpu": 2}');
CREATE TABLE trial_system_attributes (
	trial_system_attribute_id INTEGER NOT NULL, 
	trial_id INTEGER, 
	"key" VARCHAR(512), 
	value_json TEXT, 
	PRIMARY KEY (trial_system_attribute_id), 
	UNIQUE (trial_id, "key"), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO trial_system_attributes VALUES(1,1,'nas:result','{"status": "ok", "error": "", "epochs": [{"epoch": 1, "train_loss": 1.0, "val_acc": 0.5, "test_acc": 0.49, "lr": 0.1}, {"epoch": 2, "train_loss": 0.5, "val_acc": 0.7, "test_acc": 0.69, "lr": 0.1}, {"epoch": 3, "train_loss": 0.3333333333333333, "val_acc": 0.8, "test_acc": 0.79, "lr": 0.1}], "final": {"epoch": 3, "train_loss": 0.3333333333333333, "val_acc": 0.8, "test_acc": 0.79, "lr": 0.1}, "objective_values": [0.8, 1000.0]}');
INSERT INTO trial_system_attributes VALUES(2,1,'artifacts:cac4fcd1-cb50-44b3-afc1-9e3b6a3ed683','"{\"artifact_id\": \"cac4fcd1-cb50-44b3-afc1-9e3b6a3ed683\", \"filename\": \"aa11.onnx\", \"mimetype\": \"application/octet-stream\", \"encoding\": null}"');
INSERT INTO trial_system_attributes VALUES(3,2,'nas:result','{"status": "stopped", "error": "", "epochs": [{"epoch": 1, "train_loss": 1.0, "val_acc": 0.4, "test_acc": 0.39, "lr": 0.1}, {"epoch": 2, "train_loss": 0.5, "val_acc": 0.6, "test_acc": 0.59, "lr": 0.1}], "final": null, "objective_values": [0.6, 500.0]}');
INSERT INTO trial_system_attributes VALUES(4,2,'artifacts:2c883cb6-cf6e-4579-aa35-4b8dbc4daa05','"{\"artifact_id\": \"2c883cb6-cf6e-4579-aa35-4b8dbc4daa05\", \"filename\": \"bb22.onnx\", \"mimetype\": \"application/octet-stream\", \"encoding\": null}"');
INSERT INTO trial_system_attributes VALUES(5,3,'nas:result','{"status": "failed", "error": "NaN loss at epoch 2 step 5", "epochs": [{"epoch": 1, "train_loss": 1.0, "val_acc": 0.3, "test_acc": 0.29, "lr": 0.1}], "final": null, "objective_values": null}');
INSERT INTO trial_system_attributes VALUES(6,3,'artifacts:232e5b8f-777f-4d66-b18c-9ab5d258e33e','"{\"artifact_id\": \"232e5b8f-777f-4d66-b18c-9ab5d258e33e\", \"filename\": \"cc33.onnx\", \"mimetype\": \"application/octet-stream\", \"encoding\": null}"');
INSERT INTO trial_system_attributes VALUES(7,4,'nas:result','{"status": "ok", "error": "", "epochs": [{"epoch": 1, "train_loss": 1.0, "val_acc": 0.55, "test_acc": 0.54, "lr": 0.1}, {"epoch": 2, "train_loss": 0.5, "val_acc": 0.65, "test_acc": 0.64, "lr": 0.1}], "final": {"epoch": 2, "train_loss": 0.5, "val_acc": 0.65, "test_acc": 0.64, "lr": 0.1}, "objective_values": [0.65, 300.0]}');
INSERT INTO trial_system_attributes VALUES(8,4,'artifacts:835f0d25-c74c-4793-a9e6-76b68bd3cafb','"{\"artifact_id\": \"835f0d25-c74c-4793-a9e6-76b68bd3cafb\", \"filename\": \"dd44.onnx\", \"mimetype\": \"application/octet-stream\", \"encoding\": null}"');
CREATE TABLE trial_params (
	param_id INTEGER NOT NULL, 
	trial_id INTEGER, 
	param_name VARCHAR(512), 
	param_value FLOAT, 
	distribution_json TEXT, 
	PRIMARY KEY (param_id), 
	UNIQUE (trial_id, param_name), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
CREATE TABLE trial_values (
	trial_value_id INTEGER NOT NULL, 
	trial_id INTEGER NOT NULL, 
	objective INTEGER NOT NULL, 
	value FLOAT, 
	value_type VARCHAR(7) NOT NULL, 
	PRIMARY KEY (trial_value_id), 
	UNIQUE (trial_id, objective), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO trial_values VALUES(1,1,0,0.8000000000000000444,'FINITE');
INSERT INTO trial_values VALUES(2,1,1,1000.0,'FINITE');
INSERT INTO trial_values VALUES(3,4,0,0.6500000000000000222,'FINITE');
INSERT INTO trial_values VALUES(4,4,1,300.0,'FINITE');
CREATE TABLE trial_intermediate_values (
	trial_intermediate_value_id INTEGER NOT NULL, 
	trial_id INTEGER NOT NULL, 
	step INTEGER NOT NULL, 
	intermediate_value FLOAT, 
	intermediate_value_type VARCHAR(7) NOT NULL, 
	PRIMARY KEY (trial_intermediate_value_id), 
	UNIQUE (trial_id, step), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
INSERT INTO trial_intermediate_values VALUES(1,1,1,0.5,'FINITE');
INSERT INTO trial_intermediate_values VALUES(2,1,2,0.69999999999999995559,'FINITE');
INSERT INTO trial_intermediate_values VALUES(3,1,3,0.8000000000000000444,'FINITE');
INSERT INTO trial_intermediate_values VALUES(4,2,1,0.4000000000000000222,'FINITE');
INSERT INTO trial_intermediate_values VALUES(5,2,2,0.59999999999999997779,'FINITE');
INSERT INTO trial_intermediate_values VALUES(6,3,1,0.29999999999999998889,'FINITE');
INSERT INTO trial_intermediate_values VALUES(7,4,1,0.5500000000000000444,'FINITE');
INSERT INTO trial_intermediate_values VALUES(8,4,2,0.6500000000000000222,'FINITE');
CREATE TABLE trial_heartbeats (
	trial_heartbeat_id INTEGER NOT NULL, 
	trial_id INTEGER NOT NULL, 
	heartbeat DATETIME NOT NULL, 
	PRIMARY KEY (trial_heartbeat_id), 
	UNIQUE (trial_id), 
	FOREIGN KEY(trial_id) REFERENCES trials (trial_id)
);
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO alembic_version VALUES('v3.2.0.a');
CREATE TABLE nas_meta (
	"key" VARCHAR(64) NOT NULL, 
	value TEXT NOT NULL, 
	CONSTRAINT nas_meta_pk PRIMARY KEY ("key")
);
INSERT INTO nas_meta VALUES('schema_version','2');
CREATE TABLE nas_searches (
	id INTEGER NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	space VARCHAR(255) NOT NULL, 
	dataset VARCHAR(255) NOT NULL, 
	config TEXT NOT NULL, 
	seed BIGINT NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	directions TEXT NOT NULL, 
	objectives TEXT NOT NULL, 
	optuna_study_name VARCHAR(512) NOT NULL, 
	created DATETIME NOT NULL, 
	updated DATETIME NOT NULL, 
	budget INTEGER, 
	error TEXT NOT NULL, 
	CONSTRAINT nas_searches_pk PRIMARY KEY (id), 
	CONSTRAINT nas_searches_status_ck CHECK (status IN ('running', 'finished', 'failed', 'interrupted')), 
	CONSTRAINT nas_searches_name_uq UNIQUE (name)
);
INSERT INTO nas_searches VALUES(1,'s1','einspace','digits','{"epochs": 3, "bad": NaN}',7,'running','["maximize", "minimize"]','["val_acc", "params"]','s1','2026-12-01 15:52:09.821204','2026-12-01 15:52:11.520548',9,'');
CREATE TABLE nas_architectures (
	hash VARCHAR(128) NOT NULL, 
	space VARCHAR(255) NOT NULL, 
	derivation TEXT NOT NULL, 
	arch TEXT, 
	onnx BLOB NOT NULL, 
	params BIGINT NOT NULL, 
	flops BIGINT NOT NULL, 
	created DATETIME NOT NULL, 
	CONSTRAINT nas_architectures_pk PRIMARY KEY (hash)
);
INSERT INTO nas_architectures VALUES('aa11','einspace','(sequential aa11)','A',X'08076f6e6e782d61613131000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9fa0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebfc0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedfe0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff',1000,20000,'2026-12-01 15:52:09.922386');
INSERT INTO nas_architectures VALUES('bb22','einspace','(sequential bb22)',NULL,X'08076f6e6e782d6262323200ff',500,9000000000,'2026-12-01 15:52:09.958703');
INSERT INTO nas_architectures VALUES('cc33','einspace','(sequential cc33)',NULL,X'08076f6e6e782d63633333',2000,40000,'2026-12-01 15:52:09.972805');
INSERT INTO nas_architectures VALUES('dd44','einspace','(sequential dd44)',NULL,X'08076f6e6e782d64643434',300,1000,'2026-12-01 15:52:09.984993');
CREATE TABLE nas_scores (
	id INTEGER NOT NULL, 
	search_id INTEGER NOT NULL, 
	arch_hash VARCHAR(128) NOT NULL, 
	name VARCHAR(255) NOT NULL, 
	value DOUBLE, 
	value_kind VARCHAR(8) NOT NULL, 
	seconds DOUBLE, 
	created DATETIME NOT NULL, 
	CONSTRAINT nas_scores_pk PRIMARY KEY (id), 
	CONSTRAINT nas_scores_search_id_arch_hash_name_uq UNIQUE (search_id, arch_hash, name), 
	CONSTRAINT nas_scores_value_kind_ck CHECK (value_kind IN ('finite', 'nan', 'inf', '-inf')), 
	CONSTRAINT nas_scores_search_id_fk FOREIGN KEY(search_id) REFERENCES nas_searches (id) ON DELETE CASCADE, 
	CONSTRAINT nas_scores_arch_hash_fk FOREIGN KEY(arch_hash) REFERENCES nas_architectures (hash)
);
INSERT INTO nas_scores VALUES(1,1,'aa11','synflow',1000.0,'finite',0.5,'2026-12-01 15:52:09.943455');
INSERT INTO nas_scores VALUES(2,1,'aa11','nwot',1.0,'finite',0.25,'2026-12-01 15:52:09.943455');
INSERT INTO nas_scores VALUES(3,1,'aa11','grasp',NULL,'nan',NULL,'2026-12-01 15:52:09.943455');
INSERT INTO nas_scores VALUES(4,1,'bb22','synflow',500.0,'finite',0.5,'2026-12-01 15:52:09.961621');
INSERT INTO nas_scores VALUES(5,1,'bb22','nwot',1.0,'finite',0.25,'2026-12-01 15:52:09.961621');
INSERT INTO nas_scores VALUES(6,1,'bb22','grasp',NULL,'nan',NULL,'2026-12-01 15:52:09.961621');
INSERT INTO nas_scores VALUES(7,1,'cc33','synflow',2000.0,'finite',0.5,'2026-12-01 15:52:09.977758');
INSERT INTO nas_scores VALUES(8,1,'cc33','nwot',NULL,'-inf',0.25,'2026-12-01 15:52:09.977758');
INSERT INTO nas_scores VALUES(9,1,'cc33','grasp',NULL,'nan',NULL,'2026-12-01 15:52:09.977758');
INSERT INTO nas_scores VALUES(10,1,'dd44','synflow',300.0,'finite',0.5,'2026-12-01 15:52:09.987909');
INSERT INTO nas_scores VALUES(11,1,'dd44','nwot',1.0,'finite',0.25,'2026-12-01 15:52:09.987909');
INSERT INTO nas_scores VALUES(12,1,'dd44','grasp',NULL,'nan',NULL,'2026-12-01 15:52:09.987909');
CREATE TABLE nas_trials (
	id INTEGER NOT NULL, 
	search_id INTEGER NOT NULL, 
	arch_hash VARCHAR(128) NOT NULL, 
	generation INTEGER NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	error TEXT NOT NULL, 
	resources TEXT NOT NULL, 
	epochs TEXT NOT NULL, 
	final TEXT, 
	val_acc DOUBLE, 
	test_acc DOUBLE, 
	objective_values TEXT, 
	optuna_trial_number INTEGER, 
	optuna_pending BOOLEAN NOT NULL, 
	created DATETIME NOT NULL, 
	finished DATETIME, 
	tell_seq INTEGER, 
	CONSTRAINT nas_trials_pk PRIMARY KEY (id), 
	CONSTRAINT nas_trials_status_ck CHECK (status IN ('queued', 'running', 'ok', 'stopped', 'failed')), 
	CONSTRAINT nas_trials_search_id_fk FOREIGN KEY(search_id) REFERENCES nas_searches (id) ON DELETE CASCADE, 
	CONSTRAINT nas_trials_arch_hash_fk FOREIGN KEY(arch_hash) REFERENCES nas_architectures (hash)
);
INSERT INTO nas_trials VALUES(1,1,'aa11',0,'ok','','{"cpu": 1, "gpu": 0}','[{"epoch": 1, "train_loss": 1.0, "val_acc": 0.5, "test_acc": 0.49, "lr": 0.1}, {"epoch": 2, "train_loss": 0.5, "val_acc": 0.7, "test_acc": 0.69, "lr": 0.1}, {"epoch": 3, "train_loss": 0.3333333333333333, "val_acc": 0.8, "test_acc": 0.79, "lr": 0.1}]','{"epoch": 3, "train_loss": 0.3333333333333333, "val_acc": 0.8, "test_acc": 0.79, "lr": 0.1}',0.8000000000000000444,0.79000000000000003552,'[0.8, 1000.0]',0,0,'2026-12-01 15:52:10.021263','2026-12-01 15:52:10.875691',NULL);
INSERT INTO nas_trials VALUES(2,1,'bb22',0,'stopped','','{"cpu": 1}','[{"epoch": 1, "train_loss": 1.0, "val_acc": 0.4, "test_acc": 0.39, "lr": 0.1}, {"epoch": 2, "train_loss": 0.5, "val_acc": 0.6, "test_acc": 0.59, "lr": 0.1}]',NULL,0.59999999999999997779,0.58999999999999996891,'[0.6, 500.0]',1,0,'2026-12-01 15:52:10.881097','2026-12-01 15:52:11.197123',NULL);
INSERT INTO nas_trials VALUES(3,1,'cc33',1,'failed','NaN loss at epoch 2 step 5','{"cpu": 1}','[{"epoch": 1, "train_loss": 1.0, "val_acc": 0.3, "test_acc": 0.29, "lr": 0.1}]',NULL,0.29999999999999998889,0.28999999999999998001,NULL,2,0,'2026-12-01 15:52:11.201541','2026-12-01 15:52:11.329268',NULL);
INSERT INTO nas_trials VALUES(4,1,'dd44',1,'ok','','{"cpu": 2}','[{"epoch": 1, "train_loss": 1.0, "val_acc": 0.55, "test_acc": 0.54, "lr": 0.1}, {"epoch": 2, "train_loss": 0.5, "val_acc": 0.65, "test_acc": 0.64, "lr": 0.1}]','{"epoch": 2, "train_loss": 0.5, "val_acc": 0.65, "test_acc": 0.64, "lr": 0.1}',0.6500000000000000222,0.64000000000000001332,'[0.65, 300.0]',3,0,'2026-12-01 15:52:11.340204','2026-12-01 15:52:11.505232',NULL);
CREATE TABLE nas_lineage (
	id INTEGER NOT NULL, 
	search_id INTEGER NOT NULL, 
	child_hash VARCHAR(128) NOT NULL, 
	parents TEXT NOT NULL, 
	operator TEXT NOT NULL, 
	created DATETIME NOT NULL, 
	CONSTRAINT nas_lineage_pk PRIMARY KEY (id), 
	CONSTRAINT nas_lineage_search_id_child_hash_uq UNIQUE (search_id, child_hash), 
	CONSTRAINT nas_lineage_search_id_fk FOREIGN KEY(search_id) REFERENCES nas_searches (id) ON DELETE CASCADE, 
	CONSTRAINT nas_lineage_child_hash_fk FOREIGN KEY(child_hash) REFERENCES nas_architectures (hash)
);
INSERT INTO nas_lineage VALUES(1,1,'aa11','[]','sample','2026-12-01 15:52:09.999330');
INSERT INTO nas_lineage VALUES(2,1,'bb22','["aa11"]','mutate','2026-12-01 15:52:10.012045');
INSERT INTO nas_lineage VALUES(3,1,'dd44','["aa11", "bb22"]','crossover','2026-12-01 15:52:10.015174');
CREATE TABLE nas_leases (
	search_id INTEGER NOT NULL, 
	owner VARCHAR(64) NOT NULL, 
	host VARCHAR(255) NOT NULL, 
	pid BIGINT NOT NULL, 
	pid_started DOUBLE NOT NULL, 
	acquired DATETIME NOT NULL, 
	heartbeat DATETIME NOT NULL, 
	CONSTRAINT nas_leases_pk PRIMARY KEY (search_id), 
	CONSTRAINT nas_leases_search_id_fk FOREIGN KEY(search_id) REFERENCES nas_searches (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX ix_studies_study_name ON studies (study_name);
CREATE INDEX ix_trials_study_id ON trials (study_id);
CREATE INDEX nas_trials_search_id_status_ix ON nas_trials (search_id, status);
CREATE INDEX nas_trials_search_id_arch_hash_ix ON nas_trials (search_id, arch_hash);
COMMIT;
