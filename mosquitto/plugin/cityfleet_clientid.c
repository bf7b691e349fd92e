/*
 * CityFleet: every MQTT account owns its client ids, so no account can take over another's
 * session (MQTT 5 section 3.1.4-3: a CONNECT with a client id in use closes the older
 * connection, and a clean start discards its session and queued messages).
 *
 * Rule, checked before the password (a mismatch is refused even with the right password):
 *   - an account named in `plugin_opt_any_clientid` (trusted services) may use any client id;
 *   - an account named in `plugin_opt_clientid_prefix` as `user=prefix` must use client ids that
 *     start with `prefix` (the live map's viewers: one connection per browser tab);
 *   - every other account (each device, each gateway) must use its own username as client id.
 * Allowed connections go on to the password file (this plugin only ever refuses).
 *
 * Built by `python -m stack up` against Debian's mosquitto-dev headers (Mosquitto 2.0, plugin
 * API v5); loaded with `plugin <path to cityfleet_clientid.so>` before `password_file`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>

#define MAX_NAMES 32

struct prefix_rule {
	char *user;
	char *prefix;
};

static mosquitto_plugin_id_t *plugin_id;
static char *any_users[MAX_NAMES];
static int any_count;
static struct prefix_rule prefixes[MAX_NAMES];
static int prefix_count;

/* Split a space-separated option value into `out`; returns how many words were kept. */
static int split_words(const char *value, char **out, int room)
{
	char *copy = mosquitto_strdup(value);
	char *save = NULL;
	char *word;
	int n = 0;

	if(copy == NULL) return 0;
	for(word = strtok_r(copy, " ,", &save); word && n < room; word = strtok_r(NULL, " ,", &save)){
		out[n++] = mosquitto_strdup(word);
	}
	mosquitto_free(copy);
	return n;
}

static int is_any_user(const char *username)
{
	int i;
	for(i = 0; i < any_count; i++){
		if(!strcmp(any_users[i], username)) return 1;
	}
	return 0;
}

static const char *prefix_of(const char *username)
{
	int i;
	for(i = 0; i < prefix_count; i++){
		if(!strcmp(prefixes[i].user, username)) return prefixes[i].prefix;
	}
	return NULL;
}

static int on_basic_auth(int event, void *event_data, void *userdata)
{
	struct mosquitto_evt_basic_auth *ed = event_data;
	const char *clientid = mosquitto_client_id(ed->client);
	const char *prefix;

	(void)event;
	(void)userdata;
	if(ed->username == NULL || clientid == NULL){
		return MOSQ_ERR_PLUGIN_DEFER; /* anonymous: refused by allow_anonymous false */
	}
	if(is_any_user(ed->username)){
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	prefix = prefix_of(ed->username);
	if(prefix != NULL){
		if(!strncmp(clientid, prefix, strlen(prefix)) && strlen(clientid) > strlen(prefix)){
			return MOSQ_ERR_PLUGIN_DEFER;
		}
	}else if(!strcmp(clientid, ed->username)){
		return MOSQ_ERR_PLUGIN_DEFER;
	}
	mosquitto_log_printf(MOSQ_LOG_NOTICE,
			"cityfleet_clientid: refused account \"%s\" with client id \"%s\" (not its own)",
			ed->username, clientid);
	return MOSQ_ERR_AUTH;
}

int mosquitto_plugin_version(int supported_version_count, const int *supported_versions)
{
	int i;
	for(i = 0; i < supported_version_count; i++){
		if(supported_versions[i] == 5) return 5;
	}
	return -1;
}

int mosquitto_plugin_init(mosquitto_plugin_id_t *identifier, void **user_data,
		struct mosquitto_opt *opts, int opt_count)
{
	int i, j, n;
	char *words[MAX_NAMES];
	char *eq;

	(void)user_data;
	plugin_id = identifier;
	for(i = 0; i < opt_count; i++){
		if(!strcmp(opts[i].key, "any_clientid")){
			any_count = split_words(opts[i].value, any_users, MAX_NAMES);
		}else if(!strcmp(opts[i].key, "clientid_prefix")){
			n = split_words(opts[i].value, words, MAX_NAMES);
			for(j = 0; j < n; j++){
				eq = strchr(words[j], '=');
				if(eq == NULL || eq == words[j] || eq[1] == '\0'){
					mosquitto_log_printf(MOSQ_LOG_ERR,
							"cityfleet_clientid: clientid_prefix wants user=prefix, got \"%s\"", words[j]);
					return MOSQ_ERR_INVAL;
				}
				*eq = '\0';
				prefixes[prefix_count].user = words[j];
				prefixes[prefix_count].prefix = eq + 1;
				prefix_count++;
			}
		}
	}
	return mosquitto_callback_register(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL, NULL);
}

int mosquitto_plugin_cleanup(void *user_data, struct mosquitto_opt *opts, int opt_count)
{
	int i;

	(void)user_data;
	(void)opts;
	(void)opt_count;
	for(i = 0; i < any_count; i++) mosquitto_free(any_users[i]);
	for(i = 0; i < prefix_count; i++) mosquitto_free(prefixes[i].user);
	any_count = prefix_count = 0;
	return mosquitto_callback_unregister(plugin_id, MOSQ_EVT_BASIC_AUTH, on_basic_auth, NULL);
}
