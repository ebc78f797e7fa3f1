/* SPDX-License-Identifier: MIT */

/*
 * Microsoft Graph event JSON to the canonical appointment and back
 * (graph_event.h), and the CLDR table of Windows time zone names that
 * Graph uses. Reading builds a loosely written appointment and leaves the
 * canonical form to appt_normalize() (appt.c); recurrence patterns are
 * turned into RRULE text and back through libical's parser.
 */

#include "connectors/graph_event.h"

#include <ctype.h>
#include <libical/ical.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "connectors/appt.h"
#include "core/error.h"
#include "core/xmalloc.h"

/* A numbered range longer than this is refused both ways: no calendar
 * means a hundred thousand occurrences. */
#define GRAPH_MAX_COUNT 100000

/* --- Windows zone names --------------------------------------------------- */

/*
 * Unicode CLDR common/supplemental/windowsZones.xml (typeVersion 2021a),
 * with current IANA spellings first where CLDR keeps an old one
 * ("Asia/Calcutta" -> "Asia/Kolkata"). The first row of each Windows name
 * is CLDR's zone for territory 001, the zone that name stands for; the
 * other rows are zones that Windows shows under that name.
 */
static const struct {
    const char *windows, *iana;
} windows_zones[] = {
    {"Dateline Standard Time", "Etc/GMT+12"},
    {"UTC-11", "Etc/GMT+11"},
    {"UTC-11", "Pacific/Pago_Pago"},
    {"UTC-11", "Pacific/Niue"},
    {"UTC-11", "Pacific/Midway"},
    {"Aleutian Standard Time", "America/Adak"},
    {"Hawaiian Standard Time", "Pacific/Honolulu"},
    {"Hawaiian Standard Time", "Pacific/Rarotonga"},
    {"Hawaiian Standard Time", "Pacific/Tahiti"},
    {"Marquesas Standard Time", "Pacific/Marquesas"},
    {"Alaskan Standard Time", "America/Anchorage"},
    {"Alaskan Standard Time", "America/Juneau"},
    {"Alaskan Standard Time", "America/Metlakatla"},
    {"Alaskan Standard Time", "America/Nome"},
    {"Alaskan Standard Time", "America/Sitka"},
    {"Alaskan Standard Time", "America/Yakutat"},
    {"UTC-09", "Etc/GMT+9"},
    {"UTC-09", "Pacific/Gambier"},
    {"Pacific Standard Time (Mexico)", "America/Tijuana"},
    {"UTC-08", "Etc/GMT+8"},
    {"UTC-08", "Pacific/Pitcairn"},
    {"Pacific Standard Time", "America/Los_Angeles"},
    {"Pacific Standard Time", "America/Vancouver"},
    {"US Mountain Standard Time", "America/Phoenix"},
    {"US Mountain Standard Time", "America/Creston"},
    {"US Mountain Standard Time", "America/Dawson_Creek"},
    {"US Mountain Standard Time", "America/Fort_Nelson"},
    {"US Mountain Standard Time", "America/Hermosillo"},
    {"Mountain Standard Time (Mexico)", "America/Mazatlan"},
    {"Mountain Standard Time", "America/Denver"},
    {"Mountain Standard Time", "America/Edmonton"},
    {"Mountain Standard Time", "America/Cambridge_Bay"},
    {"Mountain Standard Time", "America/Inuvik"},
    {"Mountain Standard Time", "America/Ciudad_Juarez"},
    {"Mountain Standard Time", "America/Boise"},
    {"Yukon Standard Time", "America/Whitehorse"},
    {"Yukon Standard Time", "America/Dawson"},
    {"Central America Standard Time", "America/Guatemala"},
    {"Central America Standard Time", "America/Belize"},
    {"Central America Standard Time", "America/Costa_Rica"},
    {"Central America Standard Time", "Pacific/Galapagos"},
    {"Central America Standard Time", "America/Tegucigalpa"},
    {"Central America Standard Time", "America/Managua"},
    {"Central America Standard Time", "America/El_Salvador"},
    {"Central Standard Time", "America/Chicago"},
    {"Central Standard Time", "America/Winnipeg"},
    {"Central Standard Time", "America/Rankin_Inlet"},
    {"Central Standard Time", "America/Resolute"},
    {"Central Standard Time", "America/Matamoros"},
    {"Central Standard Time", "America/Ojinaga"},
    {"Central Standard Time", "America/Indiana/Knox"},
    {"Central Standard Time", "America/Indiana/Tell_City"},
    {"Central Standard Time", "America/Menominee"},
    {"Central Standard Time", "America/North_Dakota/Beulah"},
    {"Central Standard Time", "America/North_Dakota/Center"},
    {"Central Standard Time", "America/North_Dakota/New_Salem"},
    {"Easter Island Standard Time", "Pacific/Easter"},
    {"Central Standard Time (Mexico)", "America/Mexico_City"},
    {"Central Standard Time (Mexico)", "America/Bahia_Banderas"},
    {"Central Standard Time (Mexico)", "America/Merida"},
    {"Central Standard Time (Mexico)", "America/Monterrey"},
    {"Central Standard Time (Mexico)", "America/Chihuahua"},
    {"Canada Central Standard Time", "America/Regina"},
    {"Canada Central Standard Time", "America/Swift_Current"},
    {"SA Pacific Standard Time", "America/Bogota"},
    {"SA Pacific Standard Time", "America/Rio_Branco"},
    {"SA Pacific Standard Time", "America/Eirunepe"},
    {"SA Pacific Standard Time", "America/Coral_Harbour"},
    {"SA Pacific Standard Time", "America/Atikokan"},
    {"SA Pacific Standard Time", "America/Guayaquil"},
    {"SA Pacific Standard Time", "America/Jamaica"},
    {"SA Pacific Standard Time", "America/Cayman"},
    {"SA Pacific Standard Time", "America/Panama"},
    {"SA Pacific Standard Time", "America/Lima"},
    {"Eastern Standard Time (Mexico)", "America/Cancun"},
    {"Eastern Standard Time", "America/New_York"},
    {"Eastern Standard Time", "America/Nassau"},
    {"Eastern Standard Time", "America/Toronto"},
    {"Eastern Standard Time", "America/Iqaluit"},
    {"Eastern Standard Time", "America/Detroit"},
    {"Eastern Standard Time", "America/Indiana/Petersburg"},
    {"Eastern Standard Time", "America/Indiana/Vincennes"},
    {"Eastern Standard Time", "America/Indiana/Winamac"},
    {"Eastern Standard Time", "America/Kentucky/Monticello"},
    {"Eastern Standard Time", "America/Louisville"},
    {"Eastern Standard Time", "America/Kentucky/Louisville"},
    {"Eastern Standard Time", "America/Montreal"},
    {"Haiti Standard Time", "America/Port-au-Prince"},
    {"Cuba Standard Time", "America/Havana"},
    {"US Eastern Standard Time", "America/Indiana/Indianapolis"},
    {"US Eastern Standard Time", "America/Indianapolis"},
    {"US Eastern Standard Time", "America/Indiana/Marengo"},
    {"US Eastern Standard Time", "America/Indiana/Vevay"},
    {"Turks And Caicos Standard Time", "America/Grand_Turk"},
    {"Paraguay Standard Time", "America/Asuncion"},
    {"Atlantic Standard Time", "America/Halifax"},
    {"Atlantic Standard Time", "Atlantic/Bermuda"},
    {"Atlantic Standard Time", "America/Glace_Bay"},
    {"Atlantic Standard Time", "America/Goose_Bay"},
    {"Atlantic Standard Time", "America/Moncton"},
    {"Atlantic Standard Time", "America/Thule"},
    {"Venezuela Standard Time", "America/Caracas"},
    {"Central Brazilian Standard Time", "America/Cuiaba"},
    {"Central Brazilian Standard Time", "America/Campo_Grande"},
    {"SA Western Standard Time", "America/La_Paz"},
    {"SA Western Standard Time", "America/Antigua"},
    {"SA Western Standard Time", "America/Anguilla"},
    {"SA Western Standard Time", "America/Aruba"},
    {"SA Western Standard Time", "America/Barbados"},
    {"SA Western Standard Time", "America/St_Barthelemy"},
    {"SA Western Standard Time", "America/Kralendijk"},
    {"SA Western Standard Time", "America/Manaus"},
    {"SA Western Standard Time", "America/Boa_Vista"},
    {"SA Western Standard Time", "America/Porto_Velho"},
    {"SA Western Standard Time", "America/Blanc-Sablon"},
    {"SA Western Standard Time", "America/Curacao"},
    {"SA Western Standard Time", "America/Dominica"},
    {"SA Western Standard Time", "America/Santo_Domingo"},
    {"SA Western Standard Time", "America/Grenada"},
    {"SA Western Standard Time", "America/Guadeloupe"},
    {"SA Western Standard Time", "America/Guyana"},
    {"SA Western Standard Time", "America/St_Kitts"},
    {"SA Western Standard Time", "America/St_Lucia"},
    {"SA Western Standard Time", "America/Marigot"},
    {"SA Western Standard Time", "America/Martinique"},
    {"SA Western Standard Time", "America/Montserrat"},
    {"SA Western Standard Time", "America/Puerto_Rico"},
    {"SA Western Standard Time", "America/Lower_Princes"},
    {"SA Western Standard Time", "America/Port_of_Spain"},
    {"SA Western Standard Time", "America/St_Vincent"},
    {"SA Western Standard Time", "America/Tortola"},
    {"SA Western Standard Time", "America/St_Thomas"},
    {"Pacific SA Standard Time", "America/Santiago"},
    {"Newfoundland Standard Time", "America/St_Johns"},
    {"Tocantins Standard Time", "America/Araguaina"},
    {"E. South America Standard Time", "America/Sao_Paulo"},
    {"SA Eastern Standard Time", "America/Cayenne"},
    {"SA Eastern Standard Time", "Antarctica/Rothera"},
    {"SA Eastern Standard Time", "Antarctica/Palmer"},
    {"SA Eastern Standard Time", "America/Fortaleza"},
    {"SA Eastern Standard Time", "America/Belem"},
    {"SA Eastern Standard Time", "America/Maceio"},
    {"SA Eastern Standard Time", "America/Recife"},
    {"SA Eastern Standard Time", "America/Santarem"},
    {"SA Eastern Standard Time", "Atlantic/Stanley"},
    {"SA Eastern Standard Time", "America/Paramaribo"},
    {"Argentina Standard Time", "America/Argentina/Buenos_Aires"},
    {"Argentina Standard Time", "America/Buenos_Aires"},
    {"Argentina Standard Time", "America/Argentina/La_Rioja"},
    {"Argentina Standard Time", "America/Argentina/Rio_Gallegos"},
    {"Argentina Standard Time", "America/Argentina/Salta"},
    {"Argentina Standard Time", "America/Argentina/San_Juan"},
    {"Argentina Standard Time", "America/Argentina/San_Luis"},
    {"Argentina Standard Time", "America/Argentina/Tucuman"},
    {"Argentina Standard Time", "America/Argentina/Ushuaia"},
    {"Argentina Standard Time", "America/Catamarca"},
    {"Argentina Standard Time", "America/Cordoba"},
    {"Argentina Standard Time", "America/Jujuy"},
    {"Argentina Standard Time", "America/Mendoza"},
    {"Greenland Standard Time", "America/Nuuk"},
    {"Greenland Standard Time", "America/Godthab"},
    {"Montevideo Standard Time", "America/Montevideo"},
    {"Magallanes Standard Time", "America/Punta_Arenas"},
    {"Saint Pierre Standard Time", "America/Miquelon"},
    {"Bahia Standard Time", "America/Bahia"},
    {"UTC-02", "Etc/GMT+2"},
    {"UTC-02", "America/Noronha"},
    {"UTC-02", "Atlantic/South_Georgia"},
    {"Azores Standard Time", "Atlantic/Azores"},
    {"Azores Standard Time", "America/Scoresbysund"},
    {"Cape Verde Standard Time", "Atlantic/Cape_Verde"},
    {"Cape Verde Standard Time", "Etc/GMT+1"},
    {"UTC", "Etc/UTC"},
    {"UTC", "Etc/GMT"},
    {"GMT Standard Time", "Europe/London"},
    {"GMT Standard Time", "Atlantic/Canary"},
    {"GMT Standard Time", "Atlantic/Faroe"},
    {"GMT Standard Time", "Atlantic/Faeroe"},
    {"GMT Standard Time", "Europe/Guernsey"},
    {"GMT Standard Time", "Europe/Dublin"},
    {"GMT Standard Time", "Europe/Isle_of_Man"},
    {"GMT Standard Time", "Europe/Jersey"},
    {"GMT Standard Time", "Europe/Lisbon"},
    {"GMT Standard Time", "Atlantic/Madeira"},
    {"Greenwich Standard Time", "Atlantic/Reykjavik"},
    {"Greenwich Standard Time", "Africa/Ouagadougou"},
    {"Greenwich Standard Time", "Africa/Abidjan"},
    {"Greenwich Standard Time", "Africa/Accra"},
    {"Greenwich Standard Time", "America/Danmarkshavn"},
    {"Greenwich Standard Time", "Africa/Banjul"},
    {"Greenwich Standard Time", "Africa/Conakry"},
    {"Greenwich Standard Time", "Africa/Bissau"},
    {"Greenwich Standard Time", "Africa/Monrovia"},
    {"Greenwich Standard Time", "Africa/Bamako"},
    {"Greenwich Standard Time", "Africa/Nouakchott"},
    {"Greenwich Standard Time", "Atlantic/St_Helena"},
    {"Greenwich Standard Time", "Africa/Freetown"},
    {"Greenwich Standard Time", "Africa/Dakar"},
    {"Greenwich Standard Time", "Africa/Lome"},
    {"Sao Tome Standard Time", "Africa/Sao_Tome"},
    {"Morocco Standard Time", "Africa/Casablanca"},
    {"Morocco Standard Time", "Africa/El_Aaiun"},
    {"W. Europe Standard Time", "Europe/Berlin"},
    {"W. Europe Standard Time", "Europe/Andorra"},
    {"W. Europe Standard Time", "Europe/Vienna"},
    {"W. Europe Standard Time", "Europe/Zurich"},
    {"W. Europe Standard Time", "Europe/Busingen"},
    {"W. Europe Standard Time", "Europe/Gibraltar"},
    {"W. Europe Standard Time", "Europe/Rome"},
    {"W. Europe Standard Time", "Europe/Vaduz"},
    {"W. Europe Standard Time", "Europe/Luxembourg"},
    {"W. Europe Standard Time", "Europe/Monaco"},
    {"W. Europe Standard Time", "Europe/Malta"},
    {"W. Europe Standard Time", "Europe/Amsterdam"},
    {"W. Europe Standard Time", "Europe/Oslo"},
    {"W. Europe Standard Time", "Europe/Stockholm"},
    {"W. Europe Standard Time", "Arctic/Longyearbyen"},
    {"W. Europe Standard Time", "Europe/San_Marino"},
    {"W. Europe Standard Time", "Europe/Vatican"},
    {"Central Europe Standard Time", "Europe/Budapest"},
    {"Central Europe Standard Time", "Europe/Tirane"},
    {"Central Europe Standard Time", "Europe/Prague"},
    {"Central Europe Standard Time", "Europe/Podgorica"},
    {"Central Europe Standard Time", "Europe/Belgrade"},
    {"Central Europe Standard Time", "Europe/Ljubljana"},
    {"Central Europe Standard Time", "Europe/Bratislava"},
    {"Romance Standard Time", "Europe/Paris"},
    {"Romance Standard Time", "Europe/Brussels"},
    {"Romance Standard Time", "Europe/Copenhagen"},
    {"Romance Standard Time", "Europe/Madrid"},
    {"Romance Standard Time", "Africa/Ceuta"},
    {"Central European Standard Time", "Europe/Warsaw"},
    {"Central European Standard Time", "Europe/Sarajevo"},
    {"Central European Standard Time", "Europe/Zagreb"},
    {"Central European Standard Time", "Europe/Skopje"},
    {"W. Central Africa Standard Time", "Africa/Lagos"},
    {"W. Central Africa Standard Time", "Africa/Luanda"},
    {"W. Central Africa Standard Time", "Africa/Porto-Novo"},
    {"W. Central Africa Standard Time", "Africa/Kinshasa"},
    {"W. Central Africa Standard Time", "Africa/Bangui"},
    {"W. Central Africa Standard Time", "Africa/Brazzaville"},
    {"W. Central Africa Standard Time", "Africa/Douala"},
    {"W. Central Africa Standard Time", "Africa/Algiers"},
    {"W. Central Africa Standard Time", "Africa/Libreville"},
    {"W. Central Africa Standard Time", "Africa/Malabo"},
    {"W. Central Africa Standard Time", "Africa/Niamey"},
    {"W. Central Africa Standard Time", "Africa/Ndjamena"},
    {"W. Central Africa Standard Time", "Africa/Tunis"},
    {"W. Central Africa Standard Time", "Etc/GMT-1"},
    {"Jordan Standard Time", "Asia/Amman"},
    {"GTB Standard Time", "Europe/Bucharest"},
    {"GTB Standard Time", "Asia/Nicosia"},
    {"GTB Standard Time", "Asia/Famagusta"},
    {"GTB Standard Time", "Europe/Athens"},
    {"Middle East Standard Time", "Asia/Beirut"},
    {"Egypt Standard Time", "Africa/Cairo"},
    {"E. Europe Standard Time", "Europe/Chisinau"},
    {"Syria Standard Time", "Asia/Damascus"},
    {"West Bank Standard Time", "Asia/Hebron"},
    {"West Bank Standard Time", "Asia/Gaza"},
    {"South Africa Standard Time", "Africa/Johannesburg"},
    {"South Africa Standard Time", "Africa/Bujumbura"},
    {"South Africa Standard Time", "Africa/Gaborone"},
    {"South Africa Standard Time", "Africa/Lubumbashi"},
    {"South Africa Standard Time", "Africa/Maseru"},
    {"South Africa Standard Time", "Africa/Blantyre"},
    {"South Africa Standard Time", "Africa/Maputo"},
    {"South Africa Standard Time", "Africa/Kigali"},
    {"South Africa Standard Time", "Africa/Mbabane"},
    {"South Africa Standard Time", "Africa/Lusaka"},
    {"South Africa Standard Time", "Africa/Harare"},
    {"South Africa Standard Time", "Etc/GMT-2"},
    {"FLE Standard Time", "Europe/Kyiv"},
    {"FLE Standard Time", "Europe/Kiev"},
    {"FLE Standard Time", "Europe/Mariehamn"},
    {"FLE Standard Time", "Europe/Sofia"},
    {"FLE Standard Time", "Europe/Tallinn"},
    {"FLE Standard Time", "Europe/Helsinki"},
    {"FLE Standard Time", "Europe/Vilnius"},
    {"FLE Standard Time", "Europe/Riga"},
    {"Israel Standard Time", "Asia/Jerusalem"},
    {"South Sudan Standard Time", "Africa/Juba"},
    {"Kaliningrad Standard Time", "Europe/Kaliningrad"},
    {"Sudan Standard Time", "Africa/Khartoum"},
    {"Libya Standard Time", "Africa/Tripoli"},
    {"Namibia Standard Time", "Africa/Windhoek"},
    {"Arabic Standard Time", "Asia/Baghdad"},
    {"Turkey Standard Time", "Europe/Istanbul"},
    {"Arab Standard Time", "Asia/Riyadh"},
    {"Arab Standard Time", "Asia/Bahrain"},
    {"Arab Standard Time", "Asia/Kuwait"},
    {"Arab Standard Time", "Asia/Qatar"},
    {"Arab Standard Time", "Asia/Aden"},
    {"Belarus Standard Time", "Europe/Minsk"},
    {"Russian Standard Time", "Europe/Moscow"},
    {"Russian Standard Time", "Europe/Kirov"},
    {"Russian Standard Time", "Europe/Simferopol"},
    {"E. Africa Standard Time", "Africa/Nairobi"},
    {"E. Africa Standard Time", "Antarctica/Syowa"},
    {"E. Africa Standard Time", "Africa/Djibouti"},
    {"E. Africa Standard Time", "Africa/Asmara"},
    {"E. Africa Standard Time", "Africa/Asmera"},
    {"E. Africa Standard Time", "Africa/Addis_Ababa"},
    {"E. Africa Standard Time", "Indian/Comoro"},
    {"E. Africa Standard Time", "Indian/Antananarivo"},
    {"E. Africa Standard Time", "Africa/Mogadishu"},
    {"E. Africa Standard Time", "Africa/Dar_es_Salaam"},
    {"E. Africa Standard Time", "Africa/Kampala"},
    {"E. Africa Standard Time", "Indian/Mayotte"},
    {"E. Africa Standard Time", "Etc/GMT-3"},
    {"Iran Standard Time", "Asia/Tehran"},
    {"Arabian Standard Time", "Asia/Dubai"},
    {"Arabian Standard Time", "Asia/Muscat"},
    {"Arabian Standard Time", "Etc/GMT-4"},
    {"Astrakhan Standard Time", "Europe/Astrakhan"},
    {"Astrakhan Standard Time", "Europe/Ulyanovsk"},
    {"Azerbaijan Standard Time", "Asia/Baku"},
    {"Russia Time Zone 3", "Europe/Samara"},
    {"Mauritius Standard Time", "Indian/Mauritius"},
    {"Mauritius Standard Time", "Indian/Reunion"},
    {"Mauritius Standard Time", "Indian/Mahe"},
    {"Saratov Standard Time", "Europe/Saratov"},
    {"Georgian Standard Time", "Asia/Tbilisi"},
    {"Volgograd Standard Time", "Europe/Volgograd"},
    {"Caucasus Standard Time", "Asia/Yerevan"},
    {"Afghanistan Standard Time", "Asia/Kabul"},
    {"West Asia Standard Time", "Asia/Tashkent"},
    {"West Asia Standard Time", "Antarctica/Mawson"},
    {"West Asia Standard Time", "Asia/Oral"},
    {"West Asia Standard Time", "Asia/Almaty"},
    {"West Asia Standard Time", "Asia/Aqtau"},
    {"West Asia Standard Time", "Asia/Aqtobe"},
    {"West Asia Standard Time", "Asia/Atyrau"},
    {"West Asia Standard Time", "Asia/Qostanay"},
    {"West Asia Standard Time", "Indian/Maldives"},
    {"West Asia Standard Time", "Indian/Kerguelen"},
    {"West Asia Standard Time", "Asia/Dushanbe"},
    {"West Asia Standard Time", "Asia/Ashgabat"},
    {"West Asia Standard Time", "Asia/Samarkand"},
    {"West Asia Standard Time", "Etc/GMT-5"},
    {"Ekaterinburg Standard Time", "Asia/Yekaterinburg"},
    {"Pakistan Standard Time", "Asia/Karachi"},
    {"Qyzylorda Standard Time", "Asia/Qyzylorda"},
    {"India Standard Time", "Asia/Kolkata"},
    {"India Standard Time", "Asia/Calcutta"},
    {"Sri Lanka Standard Time", "Asia/Colombo"},
    {"Nepal Standard Time", "Asia/Kathmandu"},
    {"Nepal Standard Time", "Asia/Katmandu"},
    {"Central Asia Standard Time", "Asia/Bishkek"},
    {"Central Asia Standard Time", "Antarctica/Vostok"},
    {"Central Asia Standard Time", "Asia/Urumqi"},
    {"Central Asia Standard Time", "Indian/Chagos"},
    {"Central Asia Standard Time", "Etc/GMT-6"},
    {"Bangladesh Standard Time", "Asia/Dhaka"},
    {"Bangladesh Standard Time", "Asia/Thimphu"},
    {"Omsk Standard Time", "Asia/Omsk"},
    {"Myanmar Standard Time", "Asia/Yangon"},
    {"Myanmar Standard Time", "Asia/Rangoon"},
    {"Myanmar Standard Time", "Indian/Cocos"},
    {"SE Asia Standard Time", "Asia/Bangkok"},
    {"SE Asia Standard Time", "Antarctica/Davis"},
    {"SE Asia Standard Time", "Indian/Christmas"},
    {"SE Asia Standard Time", "Asia/Jakarta"},
    {"SE Asia Standard Time", "Asia/Pontianak"},
    {"SE Asia Standard Time", "Asia/Phnom_Penh"},
    {"SE Asia Standard Time", "Asia/Vientiane"},
    {"SE Asia Standard Time", "Asia/Ho_Chi_Minh"},
    {"SE Asia Standard Time", "Asia/Saigon"},
    {"SE Asia Standard Time", "Etc/GMT-7"},
    {"Altai Standard Time", "Asia/Barnaul"},
    {"W. Mongolia Standard Time", "Asia/Hovd"},
    {"North Asia Standard Time", "Asia/Krasnoyarsk"},
    {"North Asia Standard Time", "Asia/Novokuznetsk"},
    {"N. Central Asia Standard Time", "Asia/Novosibirsk"},
    {"Tomsk Standard Time", "Asia/Tomsk"},
    {"China Standard Time", "Asia/Shanghai"},
    {"China Standard Time", "Asia/Hong_Kong"},
    {"China Standard Time", "Asia/Macau"},
    {"North Asia East Standard Time", "Asia/Irkutsk"},
    {"Singapore Standard Time", "Asia/Singapore"},
    {"Singapore Standard Time", "Asia/Brunei"},
    {"Singapore Standard Time", "Asia/Makassar"},
    {"Singapore Standard Time", "Asia/Kuala_Lumpur"},
    {"Singapore Standard Time", "Asia/Kuching"},
    {"Singapore Standard Time", "Asia/Manila"},
    {"Singapore Standard Time", "Etc/GMT-8"},
    {"W. Australia Standard Time", "Australia/Perth"},
    {"Taipei Standard Time", "Asia/Taipei"},
    {"Ulaanbaatar Standard Time", "Asia/Ulaanbaatar"},
    {"Ulaanbaatar Standard Time", "Asia/Choibalsan"},
    {"Aus Central W. Standard Time", "Australia/Eucla"},
    {"Transbaikal Standard Time", "Asia/Chita"},
    {"Tokyo Standard Time", "Asia/Tokyo"},
    {"Tokyo Standard Time", "Asia/Jayapura"},
    {"Tokyo Standard Time", "Pacific/Palau"},
    {"Tokyo Standard Time", "Asia/Dili"},
    {"Tokyo Standard Time", "Etc/GMT-9"},
    {"North Korea Standard Time", "Asia/Pyongyang"},
    {"Korea Standard Time", "Asia/Seoul"},
    {"Yakutsk Standard Time", "Asia/Yakutsk"},
    {"Yakutsk Standard Time", "Asia/Khandyga"},
    {"Cen. Australia Standard Time", "Australia/Adelaide"},
    {"Cen. Australia Standard Time", "Australia/Broken_Hill"},
    {"AUS Central Standard Time", "Australia/Darwin"},
    {"E. Australia Standard Time", "Australia/Brisbane"},
    {"E. Australia Standard Time", "Australia/Lindeman"},
    {"AUS Eastern Standard Time", "Australia/Sydney"},
    {"AUS Eastern Standard Time", "Australia/Melbourne"},
    {"West Pacific Standard Time", "Pacific/Port_Moresby"},
    {"West Pacific Standard Time", "Antarctica/DumontDUrville"},
    {"West Pacific Standard Time", "Pacific/Chuuk"},
    {"West Pacific Standard Time", "Pacific/Truk"},
    {"West Pacific Standard Time", "Pacific/Guam"},
    {"West Pacific Standard Time", "Pacific/Saipan"},
    {"West Pacific Standard Time", "Etc/GMT-10"},
    {"Tasmania Standard Time", "Australia/Hobart"},
    {"Tasmania Standard Time", "Antarctica/Macquarie"},
    {"Vladivostok Standard Time", "Asia/Vladivostok"},
    {"Vladivostok Standard Time", "Asia/Ust-Nera"},
    {"Lord Howe Standard Time", "Australia/Lord_Howe"},
    {"Bougainville Standard Time", "Pacific/Bougainville"},
    {"Russia Time Zone 10", "Asia/Srednekolymsk"},
    {"Magadan Standard Time", "Asia/Magadan"},
    {"Norfolk Standard Time", "Pacific/Norfolk"},
    {"Sakhalin Standard Time", "Asia/Sakhalin"},
    {"Central Pacific Standard Time", "Pacific/Guadalcanal"},
    {"Central Pacific Standard Time", "Antarctica/Casey"},
    {"Central Pacific Standard Time", "Pacific/Pohnpei"},
    {"Central Pacific Standard Time", "Pacific/Ponape"},
    {"Central Pacific Standard Time", "Pacific/Kosrae"},
    {"Central Pacific Standard Time", "Pacific/Noumea"},
    {"Central Pacific Standard Time", "Pacific/Efate"},
    {"Central Pacific Standard Time", "Etc/GMT-11"},
    {"Russia Time Zone 11", "Asia/Kamchatka"},
    {"Russia Time Zone 11", "Asia/Anadyr"},
    {"New Zealand Standard Time", "Pacific/Auckland"},
    {"New Zealand Standard Time", "Antarctica/McMurdo"},
    {"UTC+12", "Etc/GMT-12"},
    {"UTC+12", "Pacific/Tarawa"},
    {"UTC+12", "Pacific/Majuro"},
    {"UTC+12", "Pacific/Kwajalein"},
    {"UTC+12", "Pacific/Nauru"},
    {"UTC+12", "Pacific/Funafuti"},
    {"UTC+12", "Pacific/Wake"},
    {"UTC+12", "Pacific/Wallis"},
    {"Fiji Standard Time", "Pacific/Fiji"},
    {"Chatham Islands Standard Time", "Pacific/Chatham"},
    {"UTC+13", "Etc/GMT-13"},
    {"UTC+13", "Pacific/Kanton"},
    {"UTC+13", "Pacific/Enderbury"},
    {"UTC+13", "Pacific/Fakaofo"},
    {"Tonga Standard Time", "Pacific/Tongatapu"},
    {"Samoa Standard Time", "Pacific/Apia"},
    {"Line Islands Standard Time", "Pacific/Kiritimati"},
    {"Line Islands Standard Time", "Etc/GMT-14"},
};

const char *
appt_graph_tz_to_iana(const char *windows)
{
    if (windows == NULL)
        return NULL;
    for (size_t i = 0; i < ARRAY_COUNT(windows_zones); i++) {
        if (strcasecmp(windows_zones[i].windows, windows) == 0)
            return windows_zones[i].iana;
    }
    return NULL;
}

const char *
appt_graph_tz_from_iana(const char *iana)
{
    if (iana == NULL)
        return NULL;
    for (size_t i = 0; i < ARRAY_COUNT(windows_zones); i++) {
        if (strcmp(windows_zones[i].iana, iana) == 0)
            return windows_zones[i].windows;
    }
    return NULL;
}

static cJSON *
need(cJSON *v)
{
    ASSERT(v != NULL);
    return v;
}

static const cJSON *
get(const cJSON *obj, const char *key)
{
    return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static const char *
get_str(const cJSON *obj, const char *key)
{
    const cJSON *v = get(obj, key);

    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A zone as Graph names it ("UTC", a Windows name, an IANA name,
 * "tzone://Microsoft/Utc") in its canonical IANA spelling ("" for UTC).
 * Returns 0, or -1 for a name nobody knows (also "tzone://Microsoft/Custom"). */
static int
zone_of(const char *name, char out[APPT_TZ_MAX])
{
    const char *iana;

    out[0] = '\0';
    if (name == NULL || name[0] == '\0' || strcasecmp(name, "tzone://Microsoft/Utc") == 0)
        return 0;
    iana = appt_graph_tz_to_iana(name);
    return appt_tz_canonical(iana != NULL ? iana : name, out) ? 0 : -1;
}

/* --- reading -------------------------------------------------------------- */

/* A Graph {dateTime, timeZone}: an instant, or its date when all_day. */
static int
read_time(const cJSON *dt, const char *what, int all_day, struct appt_when *out, struct error *err)
{
    const char *text = get_str(dt, "dateTime"), *zone = get_str(dt, "timeZone");
    struct appt_text t;
    int64_t civil;

    memset(out, 0, sizeof(*out));
    if (text == NULL || appt_text_parse(text, &t) != 0 || t.is_date)
        return error_set(err, ERROR_MAPPING, "%s.dateTime is missing or not a date and time", what);
    if (zone_of(zone, out->tz) != 0)
        return error_set(err, ERROR_MAPPING, "%s.timeZone \"%.64s\" is not a known zone", what,
                         zone);
    if (all_day) {
        /* An all-day event runs from midnight to midnight in its zone. */
        civil = t.civil_s;
        out->kind = APPT_WHEN_DATE;
        out->s = civil - ((civil % APPT_DAY_S) + APPT_DAY_S) % APPT_DAY_S;
        out->tz[0] = '\0';
        return 0;
    }
    out->kind = APPT_WHEN_AT;
    if (t.has_offset) {
        out->s = t.civil_s - t.offset_s;
        return 0;
    }
    return appt_tz_local_to_utc(out->tz, t.civil_s, &out->s, err) == 0
               ? 0
               : error_wrap(err, "%s", what);
}

/* At a '<': how many bytes the tag takes, or the whole element for head,
 * style and script (their content is no text); *is_break when it ends a
 * line (br, and the end of p, div, li, tr). */
static size_t
tag_len(const char *s, int *is_break)
{
    static const char *const skipped[] = {"head", "style", "script"};
    static const char *const breaks[] = {"<br", "</p", "</div", "</li", "</tr"};
    const char *gt = strchr(s, '>');
    const char *end = gt != NULL ? gt + 1 : s + strlen(s);

    *is_break = 0;
    for (size_t k = 0; k < ARRAY_COUNT(breaks); k++)
        *is_break |= strncasecmp(s, breaks[k], strlen(breaks[k])) == 0;
    for (size_t k = 0; k < ARRAY_COUNT(skipped); k++) {
        size_t kl = strlen(skipped[k]);
        char close[16];
        const char *c;

        if (strncasecmp(s + 1, skipped[k], kl) != 0 || isalnum((unsigned char)s[1 + kl]))
            continue;
        (void)snprintf(close, sizeof(close), "</%s", skipped[k]);
        c = strcasestr(s, close);
        c = c != NULL ? strchr(c, '>') : NULL;
        end = c != NULL ? c + 1 : s + strlen(s);
        break;
    }
    return (size_t)(end - s);
}

/* At a '&': the character a common entity stands for, with *len its
 * length; 0 when it is none of them (the '&' is then text). */
static char
entity(const char *s, size_t *len)
{
    static const struct {
        const char *name;
        char c;
    } ents[] = {{"&amp;", '&'},  {"&lt;", '<'},    {"&gt;", '>'},  {"&quot;", '"'},
                {"&#39;", '\''}, {"&apos;", '\''}, {"&nbsp;", ' '}};

    for (size_t k = 0; k < ARRAY_COUNT(ents); k++) {
        *len = strlen(ents[k].name);
        if (strncasecmp(s, ents[k].name, *len) == 0)
            return ents[k].c;
    }
    return 0;
}

/* Plain text of an HTML body: elements dropped (head, style and script with
 * their content), line breaks where blocks end, the common entities decoded,
 * white space collapsed as a browser would. A fallback: Graph gives text
 * when asked for it. */
static char *
html_to_text(const char *html)
{
    size_t n = strlen(html), w = 0, len;
    char *out = xmalloc(n + 1), c;
    int space = 0, is_break;

    for (size_t i = 0; i < n;) {
        if (html[i] == '<') {
            i += tag_len(html + i, &is_break);
            if (is_break) {
                while (w > 0 && out[w - 1] == ' ')
                    w--;
                out[w++] = '\n';
                space = 1;
            }
            continue;
        }
        c = '\0';
        if (html[i] == '&')
            c = entity(html + i, &len);
        if (c == '\0') {
            c = html[i];
            len = 1;
        }
        i += len;
        if (isspace((unsigned char)c)) {
            if (!space && w > 0)
                out[w++] = ' ';
            space = 1;
            continue;
        }
        out[w++] = c;
        space = 0;
    }
    while (w > 0 && isspace((unsigned char)out[w - 1]))
        w--;
    out[w] = '\0';
    return out;
}

static void
read_texts(const cJSON *ev, int is_override, cJSON *o)
{
    const cJSON *body = get(ev, "body");
    const char *subject = get_str(ev, "subject");
    const char *content = get_str(body, "content");
    const char *type = get_str(body, "contentType");
    const char *place = get_str(get(ev, "location"), "displayName");
    char *text = NULL;

    if (content != NULL)
        text = type != NULL && strcasecmp(type, "html") == 0 ? html_to_text(content)
                                                             : xstrdup(content);
    if (subject != NULL && subject[0] != '\0')
        cJSON_AddItemToObject(o, "title", need(cJSON_CreateString(subject)));
    else if (is_override)
        cJSON_AddItemToObject(o, "title", need(cJSON_CreateNull()));
    if (text != NULL && text[0] != '\0')
        cJSON_AddItemToObject(o, "description", need(cJSON_CreateString(text)));
    else if (is_override)
        cJSON_AddItemToObject(o, "description", need(cJSON_CreateNull()));
    free(text);
    if (place != NULL && place[0] != '\0')
        cJSON_AddItemToObject(o, "location", need(cJSON_CreateString(place)));
    else if (is_override)
        cJSON_AddItemToObject(o, "location", need(cJSON_CreateNull()));
    cJSON_AddItemToObject(
        o, "status",
        need(cJSON_CreateString(cJSON_IsTrue(get(ev, "isCancelled")) ? "cancelled" : "confirmed")));
}

/* A Graph recipient ({emailAddress{address, name}}); NULL without an
 * email address. */
static cJSON *
read_person(const cJSON *p, int is_attendee)
{
    const cJSON *addr = get(p, "emailAddress");
    const char *email = get_str(addr, "address"), *name = get_str(addr, "name");
    const char *response = get_str(get(p, "status"), "response"), *status = "needs-action";
    char *key = email != NULL ? appt_email_key(email) : NULL;
    cJSON *o;

    if (key == NULL)
        return NULL;
    o = need(cJSON_CreateObject());
    cJSON_AddItemToObject(o, "email", need(cJSON_CreateString(key)));
    free(key);
    if (name != NULL && name[0] != '\0')
        cJSON_AddItemToObject(o, "name", need(cJSON_CreateString(name)));
    if (!is_attendee)
        return o;
    if (response != NULL &&
        (strcmp(response, "accepted") == 0 || strcmp(response, "organizer") == 0))
        status = "accepted";
    else if (response != NULL && strcmp(response, "declined") == 0)
        status = "declined";
    else if (response != NULL && strcmp(response, "tentativelyAccepted") == 0)
        status = "tentative";
    cJSON_AddItemToObject(o, "status", need(cJSON_CreateString(status)));
    if (get_str(p, "type") != NULL && strcmp(get_str(p, "type"), "optional") == 0)
        cJSON_AddItemToObject(o, "optional", need(cJSON_CreateTrue()));
    return o;
}

static void
read_people(const cJSON *ev, int is_override, cJSON *o)
{
    cJSON *org = read_person(get(ev, "organizer"), 0), *list = need(cJSON_CreateArray());
    const cJSON *it;

    if (org != NULL)
        cJSON_AddItemToObject(o, "organizer", org);
    else if (is_override)
        cJSON_AddItemToObject(o, "organizer", need(cJSON_CreateNull()));
    cJSON_ArrayForEach(it, get(ev, "attendees"))
    {
        cJSON *a = read_person(it, 1);

        if (a != NULL)
            cJSON_AddItemToArray(list, a);
    }
    cJSON_AddItemToObject(o, "attendees", list);
}

/* start and end; the zone shown is the one the event was made in
 * (originalStartTimeZone), when Graph says which. */
static int
read_times(const cJSON *ev, cJSON *o, struct appt_when *start, struct error *err)
{
    int all_day = cJSON_IsTrue(get(ev, "isAllDay"));
    struct appt_when end;
    char zone[APPT_TZ_MAX];
    cJSON *js, *je;

    if (read_time(get(ev, "start"), "start", all_day, start, err) != 0 ||
        read_time(get(ev, "end"), "end", all_day, &end, err) != 0)
        return -1;
    if (!all_day && zone_of(get_str(ev, "originalStartTimeZone"), zone) == 0 && zone[0] != '\0')
        memcpy(start->tz, zone, sizeof(zone));
    if (!all_day && zone_of(get_str(ev, "originalEndTimeZone"), zone) == 0 && zone[0] != '\0')
        memcpy(end.tz, zone, sizeof(zone));
    else if (!all_day && get_str(ev, "originalEndTimeZone") == NULL && end.tz[0] == '\0')
        memcpy(end.tz, start->tz, sizeof(end.tz)); /* an instance often names only its start's */
    js = appt_when_json(start);
    je = appt_when_json(&end);
    if (js == NULL || je == NULL) {
        cJSON_Delete(js);
        cJSON_Delete(je);
        return error_set(err, ERROR_MAPPING, "a time outside years 0001-3000");
    }
    cJSON_AddItemToObject(o, "start", js);
    cJSON_AddItemToObject(o, "end", je);
    return 0;
}

/* --- recurrence pattern -> RRULE ------------------------------------------ */

static const char *const graph_days[7] = {"sunday",   "monday", "tuesday", "wednesday",
                                          "thursday", "friday", "saturday"};
static const char *const rrule_days[7] = {"SU", "MO", "TU", "WE", "TH", "FR", "SA"};

struct text {
    char s[512];
    size_t len;
};

static int put(struct text *t, const char *fmt, ...) PRINTF_LIKE(2, 3);

static int
put(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(t->s + t->len, sizeof(t->s) - t->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(t->s) - t->len)
        return -1;
    t->len += (size_t)n;
    return 0;
}

static int
day_index(const char *name)
{
    for (int i = 0; i < 7; i++) {
        if (name != NULL && strcasecmp(name, graph_days[i]) == 0)
            return i;
    }
    return -1;
}

/* The position a pattern's index names: 1 to 4, -1 for "last"; "first"
 * when it names none. */
static int
index_pos(const char *index)
{
    static const char *const indexes[] = {"first", "second", "third", "fourth", "last"};

    for (int i = 0; index != NULL && i < 5; i++) {
        if (strcasecmp(index, indexes[i]) == 0)
            return i == 4 ? -1 : i + 1;
    }
    return 1;
}

/* BYDAY (and BYSETPOS) of a pattern's daysOfWeek; for a relative one at its
 * index (first..fourth, last): "1MO", or "MO,TU;BYSETPOS=1". */
static int
put_days(struct text *t, const cJSON *pattern, int relative, struct error *err)
{
    const cJSON *days = get(pattern, "daysOfWeek"), *it;
    int count = cJSON_GetArraySize(days), pos = index_pos(get_str(pattern, "index")), n = 0;

    if (!cJSON_IsArray(days) || count == 0)
        return error_set(err, ERROR_MAPPING, "pattern.daysOfWeek is empty");
    if (count > 7 || put(t, ";BYDAY=") != 0)
        return error_set(err, ERROR_MAPPING, "pattern.daysOfWeek has more than 7 days");
    cJSON_ArrayForEach(it, days)
    {
        int d = day_index(cJSON_IsString(it) ? it->valuestring : NULL);

        if (d < 0)
            return error_set(err, ERROR_MAPPING, "pattern.daysOfWeek holds an unknown day");
        if ((relative && count == 1 ? put(t, "%d%s", pos, rrule_days[d])
                                    : put(t, "%s%s", n > 0 ? "," : "", rrule_days[d])) != 0)
            return error_set(err, ERROR_MAPPING, "pattern too long");
        n++;
    }
    if (relative && count > 1 && put(t, ";BYSETPOS=%d", pos) != 0)
        return error_set(err, ERROR_MAPPING, "pattern too long");
    return 0;
}

/* A time in iCalendar's basic form: "20260329", "20260329T073000Z". */
static int
basic_text(int64_t s, int is_date, char out[APPT_TEXT_MAX])
{
    struct appt_fields f;
    char text[96];

    if (s < APPT_CIVIL_MIN || s > APPT_CIVIL_MAX)
        return -1;
    appt_civil_split(s, &f);
    if (is_date)
        (void)snprintf(text, sizeof(text), "%04d%02d%02d", f.year, f.month, f.day);
    else
        (void)snprintf(text, sizeof(text), "%04d%02d%02dT%02d%02d%02dZ", f.year, f.month, f.day,
                       f.hour, f.minute, f.second);
    if (strlen(text) >= APPT_TEXT_MAX)
        return -1;
    memcpy(out, text, strlen(text) + 1);
    return 0;
}

/* The range's end: UNTIL (the end of endDate in the series' zone), COUNT,
 * or nothing. */
static int
put_range(struct text *t, const cJSON *range, const struct appt_when *start, struct error *err)
{
    const char *type = get_str(range, "type"), *end = get_str(range, "endDate");
    const cJSON *count = get(range, "numberOfOccurrences");
    struct appt_text d;
    char until[APPT_TEXT_MAX];
    int64_t utc;

    if (type == NULL || strcmp(type, "noEnd") == 0)
        return 0;
    if (strcmp(type, "numbered") == 0) {
        if (!cJSON_IsNumber(count) || count->valuedouble < 1 ||
            count->valuedouble > GRAPH_MAX_COUNT)
            return error_set(err, ERROR_MAPPING, "range.numberOfOccurrences is not 1 to %d",
                             GRAPH_MAX_COUNT);
        return put(t, ";COUNT=%d", count->valueint) == 0 ? 0 : error_set(err, ERROR_MAPPING, "?");
    }
    if (strcmp(type, "endDate") != 0)
        return error_set(err, ERROR_MAPPING, "range type %.32s is unknown", type);
    if (end == NULL || appt_text_parse(end, &d) != 0 || !d.is_date)
        return error_set(err, ERROR_MAPPING, "range.endDate is not a date");
    if (start->kind == APPT_WHEN_DATE) {
        if (basic_text(d.civil_s, 1, until) != 0)
            return error_set(err, ERROR_MAPPING, "range.endDate out of range");
    } else if (appt_tz_local_to_utc(start->tz, d.civil_s + APPT_DAY_S - 1, &utc, err) != 0 ||
               basic_text(utc, 0, until) != 0) {
        return error_set(err, ERROR_MAPPING, "range.endDate out of range");
    }
    return put(t, ";UNTIL=%s", until) == 0 ? 0 : error_set(err, ERROR_MAPPING, "?");
}

/* A weekly pattern as the start of an RRULE. */
static int
put_weekly(struct text *t, const cJSON *pattern, int interval, struct error *err)
{
    int wkst = day_index(get_str(pattern, "firstDayOfWeek"));

    if (put(t, "FREQ=WEEKLY") != 0 || put_days(t, pattern, 0, err) != 0)
        return -1;
    /* WKST changes which days a week holds only for several days every few
     * weeks; Graph's default first day is Sunday. */
    if (interval > 1 && cJSON_GetArraySize(get(pattern, "daysOfWeek")) > 1)
        return put(t, ";WKST=%s", rrule_days[wkst >= 0 ? wkst : 0]);
    return 0;
}

/* Graph's pattern type and its fields as the start of an RRULE. */
static int
put_pattern(struct text *t, const cJSON *pattern, const char *type, int interval, struct error *err)
{
    const cJSON *month = get(pattern, "month"), *mday = get(pattern, "dayOfMonth");
    int yearly = strstr(type, "Yearly") != NULL;
    int has_month = cJSON_IsNumber(month) && month->valuedouble >= 1 && month->valuedouble <= 12;

    if (strcmp(type, "daily") == 0)
        return put(t, "FREQ=DAILY");
    if (strcmp(type, "weekly") == 0)
        return put_weekly(t, pattern, interval, err);
    if (yearly && !has_month)
        return error_set(err, ERROR_MAPPING, "pattern %.32s needs month", type);
    if (strcmp(type, "absoluteMonthly") == 0 || strcmp(type, "absoluteYearly") == 0) {
        if (!cJSON_IsNumber(mday) || mday->valuedouble < 1 || mday->valuedouble > 31)
            return error_set(err, ERROR_MAPPING, "pattern %s needs dayOfMonth", type);
        return yearly
                   ? put(t, "FREQ=YEARLY;BYMONTH=%d;BYMONTHDAY=%d", month->valueint, mday->valueint)
                   : put(t, "FREQ=MONTHLY;BYMONTHDAY=%d", mday->valueint);
    }
    if (strcmp(type, "relativeMonthly") == 0 || strcmp(type, "relativeYearly") == 0)
        return (yearly ? put(t, "FREQ=YEARLY;BYMONTH=%d", month->valueint)
                       : put(t, "FREQ=MONTHLY")) != 0 ||
                       put_days(t, pattern, 1, err) != 0
                   ? -1
                   : 0;
    return error_set(err, ERROR_MAPPING, "pattern type %.32s is unknown", type);
}

static int
pattern_to_rrule(const cJSON *rec, const struct appt_when *start, char **out, struct error *err)
{
    const cJSON *pattern = get(rec, "pattern"), *iv = get(pattern, "interval");
    const char *type = get_str(pattern, "type");
    struct text t = {{0}, 0};
    int interval = 1;

    if (type == NULL)
        return error_set(err, ERROR_MAPPING, "recurrence.pattern.type is missing");
    if (cJSON_IsNumber(iv)) {
        if (iv->valuedouble < 1 || iv->valuedouble > 1000)
            return error_set(err, ERROR_MAPPING, "pattern.interval is not 1 to 1000");
        interval = iv->valueint;
    }
    if (put_pattern(&t, pattern, type, interval, err) != 0 ||
        (interval > 1 && put(&t, ";INTERVAL=%d", interval) != 0) ||
        put_range(&t, get(rec, "range"), start, err) != 0)
        return error_set(err, ERROR_MAPPING, "recurrence pattern cannot be read");
    *out = xstrdup(t.s);
    return 0;
}

/* The occurrence an OID.<master id>.<date> names: that date at the series'
 * time of day. */
static int
rid_from_oid(const char *oid, const struct appt_when *start, struct appt_when *out,
             struct error *err)
{
    const char *dot = strrchr(oid, '.');
    struct appt_text d;
    int64_t local;

    *out = *start;
    if (dot == NULL || appt_text_parse(dot + 1, &d) != 0 || !d.is_date)
        return error_set(err, ERROR_MAPPING, "occurrence id \"%.80s\" has no date", oid);
    if (start->kind == APPT_WHEN_DATE) {
        out->s = d.civil_s;
        return 0;
    }
    if (appt_tz_utc_to_local(start->tz, start->s, &local, err) != 0)
        return -1;
    local = d.civil_s + ((local % APPT_DAY_S) + APPT_DAY_S) % APPT_DAY_S;
    return appt_tz_local_to_utc(start->tz, local, &out->s, err);
}

/* The recurrence id of an instance: its originalStart (for an all-day
 * series, the nearest midnight: Graph gives the instant of the local one),
 * else the date in its occurrenceId. */
static int
instance_rid(const cJSON *inst, const struct appt_when *start, char out[APPT_TEXT_MAX],
             struct error *err)
{
    const char *orig = get_str(inst, "originalStart"), *oid = get_str(inst, "occurrenceId");
    struct appt_when w = *start;
    struct appt_text t;

    if (orig != NULL) {
        if (appt_text_parse(orig, &t) != 0)
            return error_set(err, ERROR_MAPPING, "originalStart \"%.40s\" is not a time", orig);
        w.s = t.is_date ? t.civil_s : t.civil_s - t.offset_s;
        if (start->kind == APPT_WHEN_DATE)
            w.s = (w.s + APPT_DAY_S / 2) / APPT_DAY_S * APPT_DAY_S -
                  (w.s + APPT_DAY_S / 2 < 0 && (w.s + APPT_DAY_S / 2) % APPT_DAY_S != 0 ? APPT_DAY_S
                                                                                        : 0);
    } else if (oid != NULL) {
        if (rid_from_oid(oid, start, &w, err) != 0)
            return -1;
    } else {
        return error_set(err, ERROR_MAPPING, "an instance without originalStart or occurrenceId");
    }
    if (appt_when_text(&w, out) != 0)
        return error_set(err, ERROR_MAPPING, "an occurrence outside years 0001-3000");
    return 0;
}

/* One overridden occurrence; only the fields the instance carries (a
 * partial $select leaves the others to the series). */
static int
read_exception(const cJSON *inst, const char *rid, cJSON **out, struct error *err)
{
    cJSON *e = need(cJSON_CreateObject()), *tmp = need(cJSON_CreateObject());
    struct appt_when start;
    static const struct {
        const char *graph, *canon;
    } fields[] = {{"subject", "title"},       {"body", "description"},
                  {"location", "location"},   {"isCancelled", "status"},
                  {"organizer", "organizer"}, {"attendees", "attendees"}};

    cJSON_AddItemToObject(e, "recurrence_id", need(cJSON_CreateString(rid)));
    read_texts(inst, 1, tmp);
    read_people(inst, 1, tmp);
    for (size_t i = 0; i < ARRAY_COUNT(fields); i++) {
        if (get(inst, fields[i].graph) != NULL)
            cJSON_AddItemToObject(e, fields[i].canon,
                                  cJSON_DetachItemFromObjectCaseSensitive(tmp, fields[i].canon));
    }
    cJSON_Delete(tmp);
    if (get(inst, "start") != NULL && read_times(inst, e, &start, err) != 0) {
        cJSON_Delete(e);
        return error_wrap(err, "occurrence %s", rid);
    }
    *out = e;
    return 0;
}

static int
read_instances(const cJSON *event, const cJSON *instances, const struct appt_when *start,
               cJSON *raw, cJSON *exdates, struct error *err)
{
    const cJSON *list = instances != NULL ? instances : get(event, "exceptionOccurrences"), *it;
    cJSON *exceptions = need(cJSON_CreateArray());

    cJSON_AddItemToObject(raw, "exceptions", exceptions);
    cJSON_ArrayForEach(it, get(event, "cancelledOccurrences"))
    {
        struct appt_when w;
        char text[APPT_TEXT_MAX];

        if (!cJSON_IsString(it) || rid_from_oid(it->valuestring, start, &w, err) != 0 ||
            appt_when_text(&w, text) != 0)
            return error_set(err, ERROR_MAPPING, "cancelledOccurrences holds a bad entry");
        cJSON_AddItemToArray(exdates, need(cJSON_CreateString(text)));
    }
    if (list != NULL && !cJSON_IsArray(list))
        return error_set(err, ERROR_MAPPING, "instances is not an array");
    cJSON_ArrayForEach(it, list)
    {
        const char *type = get_str(it, "type");
        char rid[APPT_TEXT_MAX];
        cJSON *e = NULL;

        if (!cJSON_IsObject(it) || get(it, "@removed") != NULL ||
            (type != NULL && strcmp(type, "exception") != 0))
            continue; /* a plain occurrence, the master, or a tombstone without a date */
        if (instance_rid(it, start, rid, err) != 0)
            return -1;
        if (cJSON_IsTrue(get(it, "isCancelled"))) {
            cJSON_AddItemToArray(exdates, need(cJSON_CreateString(rid)));
            continue;
        }
        if (read_exception(it, rid, &e, err) != 0)
            return -1;
        cJSON_AddItemToArray(exceptions, e);
    }
    return 0;
}

static int
read_series(const cJSON *event, const cJSON *instances, const struct appt_when *start, cJSON *raw,
            struct error *err)
{
    const cJSON *rec = get(event, "recurrence");
    cJSON *r, *exdates;
    char *rrule = NULL;

    if (!cJSON_IsObject(rec))
        return 0;
    if (pattern_to_rrule(rec, start, &rrule, err) != 0)
        return error_wrap(err, "recurrence");
    r = need(cJSON_CreateObject());
    cJSON_AddItemToObject(raw, "recurrence", r);
    cJSON_AddItemToObject(r, "rrule", need(cJSON_CreateString(rrule)));
    free(rrule);
    exdates = need(cJSON_CreateArray());
    cJSON_AddItemToObject(r, "exdates", exdates);
    return read_instances(event, instances, start, raw, exdates, err);
}

int
appt_from_graph(const cJSON *event, const cJSON *instances, cJSON **out, struct error *err)
{
    const char *uid = get_str(event, "iCalUId");
    struct appt_when start;
    cJSON *raw;
    int rc = -1;

    if (!cJSON_IsObject(event))
        return error_set(err, ERROR_MAPPING, "graph event: not an object");
    if (uid == NULL)
        uid = get_str(event, "id");
    if (uid == NULL || uid[0] == '\0')
        return error_set(err, ERROR_MAPPING, "graph event: neither iCalUId nor id");
    raw = need(cJSON_CreateObject());
    cJSON_AddItemToObject(raw, "uid", need(cJSON_CreateString(uid)));
    read_texts(event, 0, raw);
    read_people(event, 0, raw);
    if (read_times(event, raw, &start, err) == 0 &&
        read_series(event, instances, &start, raw, err) == 0)
        rc = appt_normalize(raw, out, err);
    cJSON_Delete(raw);
    return rc == 0 ? 0 : error_wrap(err, "graph event");
}

/* --- writing -------------------------------------------------------------- */

/* The name Graph is given for a zone: Windows, else IANA; "UTC" for none. */
static const char *
graph_zone_name(const char *tz)
{
    const char *win = appt_graph_tz_from_iana(tz);

    if (tz[0] == '\0')
        return "UTC";
    return win != NULL ? win : tz;
}

static int
write_time(cJSON *ev, const char *key, const struct appt_when *w, struct error *err)
{
    char text[APPT_TEXT_MAX];
    const char *zone = "UTC";
    int64_t local = w->s;
    cJSON *o;

    if (w->kind == APPT_WHEN_LOCAL)
        return error_set(err, ERROR_MAPPING,
                         "%s is a floating local time, which Graph cannot hold; give it a zone",
                         key);
    if (w->kind == APPT_WHEN_AT) {
        zone = graph_zone_name(w->tz);
        if (appt_tz_utc_to_local(w->tz, w->s, &local, err) != 0)
            return -1;
    }
    if (appt_format_local(local, text) != 0)
        return error_set(err, ERROR_MAPPING, "%s outside years 0001-3000", key);
    o = need(cJSON_CreateObject());
    cJSON_AddItemToObject(o, "dateTime", need(cJSON_CreateString(text)));
    cJSON_AddItemToObject(o, "timeZone", need(cJSON_CreateString(zone)));
    cJSON_AddItemToObject(ev, key, o);
    return 0;
}

static cJSON *
recipient(const cJSON *person)
{
    cJSON *r = need(cJSON_CreateObject()), *addr = need(cJSON_CreateObject());
    const char *name = get_str(person, "name");

    cJSON_AddItemToObject(addr, "address", need(cJSON_CreateString(get_str(person, "email"))));
    if (name != NULL)
        cJSON_AddItemToObject(addr, "name", need(cJSON_CreateString(name)));
    cJSON_AddItemToObject(r, "emailAddress", addr);
    return r;
}

static void
write_people(cJSON *ev, const cJSON *o)
{
    cJSON *list = need(cJSON_CreateArray());
    const cJSON *it;

    if (cJSON_IsObject(get(o, "organizer")))
        cJSON_AddItemToObject(ev, "organizer", recipient(get(o, "organizer")));
    cJSON_ArrayForEach(it, get(o, "attendees"))
    {
        cJSON *a = recipient(it), *st = need(cJSON_CreateObject());
        const char *s = get_str(it, "status");

        cJSON_AddItemToObject(
            a, "type",
            need(cJSON_CreateString(cJSON_IsTrue(get(it, "optional")) ? "optional" : "required")));
        cJSON_AddItemToObject(
            st, "response",
            need(cJSON_CreateString(strcmp(s, "accepted") == 0    ? "accepted"
                                    : strcmp(s, "declined") == 0  ? "declined"
                                    : strcmp(s, "tentative") == 0 ? "tentativelyAccepted"
                                                                  : "notResponded")));
        cJSON_AddItemToObject(a, "status", st);
        cJSON_AddItemToArray(list, a);
    }
    cJSON_AddItemToObject(ev, "attendees", list);
}

/* The fields of one event (the series, or one occurrence in full). */
static int
write_body(const cJSON *o, cJSON *ev, struct error *err)
{
    const char *title = get_str(o, "title"), *desc = get_str(o, "description");
    const char *place = get_str(o, "location");
    struct appt_when start, end;
    cJSON *body = need(cJSON_CreateObject()), *loc = need(cJSON_CreateObject());

    cJSON_AddItemToObject(ev, "subject", need(cJSON_CreateString(title ? title : "")));
    cJSON_AddItemToObject(body, "contentType", need(cJSON_CreateString("text")));
    cJSON_AddItemToObject(body, "content", need(cJSON_CreateString(desc ? desc : "")));
    cJSON_AddItemToObject(ev, "body", body);
    if (appt_when_get(get(o, "start"), "start", &start, err) != 0 ||
        appt_when_get(get(o, "end"), "end", &end, err) != 0 ||
        write_time(ev, "start", &start, err) != 0 || write_time(ev, "end", &end, err) != 0) {
        cJSON_Delete(loc);
        return -1;
    }
    cJSON_AddItemToObject(ev, "isAllDay", need(cJSON_CreateBool(start.kind == APPT_WHEN_DATE)));
    cJSON_AddItemToObject(loc, "displayName", need(cJSON_CreateString(place ? place : "")));
    cJSON_AddItemToObject(ev, "location", loc);
    write_people(ev, o);
    return 0;
}

static int
by_count(const short *list, int size)
{
    int n = 0;

    while (n < size && list[n] != ICAL_RECURRENCE_ARRAY_MAX)
        n++;
    return n;
}

static cJSON *
days_json(const struct icalrecurrencetype *r)
{
    cJSON *days = need(cJSON_CreateArray());

    for (int i = 0; i < by_count(r->by_day, ICAL_BY_DAY_SIZE); i++) {
        int d = (int)icalrecurrencetype_day_day_of_week(r->by_day[i]);

        cJSON_AddItemToArray(days, need(cJSON_CreateString(graph_days[(d + 6) % 7])));
    }
    return days;
}

/* The monthly or yearly part of a pattern: a day of the month, or days at
 * an index. */
static int
month_pattern(const struct icalrecurrencetype *r, cJSON *p, int yearly, struct error *err)
{
    static const char *const indexes[] = {"last", "", "first", "second", "third", "fourth"};
    int nday = by_count(r->by_day, ICAL_BY_DAY_SIZE);
    int nmd = by_count(r->by_month_day, ICAL_BY_MONTHDAY_SIZE);
    int nsp = by_count(r->by_set_pos, ICAL_BY_SETPOS_SIZE), pos = 0;

    if (nmd > 0) {
        if (nmd != 1 || nday > 0 || nsp > 0 || r->by_month_day[0] < 1)
            return error_set(err, ERROR_MAPPING,
                             "Graph holds one positive BYMONTHDAY, without BYDAY or BYSETPOS");
        cJSON_AddItemToObject(
            p, "type", need(cJSON_CreateString(yearly ? "absoluteYearly" : "absoluteMonthly")));
        cJSON_AddItemToObject(p, "dayOfMonth", need(cJSON_CreateNumber(r->by_month_day[0])));
        return 0;
    }
    if (nday == 1 && nsp == 0)
        pos = icalrecurrencetype_day_position(r->by_day[0]);
    else if (nday > 0 && nsp == 1)
        pos = r->by_set_pos[0];
    for (int i = 0; i < nday; i++) {
        if (nsp > 0 && icalrecurrencetype_day_position(r->by_day[i]) != 0)
            pos = 0;
    }
    if (pos < -1 || pos == 0 || pos > 4)
        return error_set(err, ERROR_MAPPING,
                         "Graph holds days at one position: first to fourth, or last");
    cJSON_AddItemToObject(p, "type",
                          need(cJSON_CreateString(yearly ? "relativeYearly" : "relativeMonthly")));
    cJSON_AddItemToObject(p, "daysOfWeek", days_json(r));
    cJSON_AddItemToObject(p, "index", need(cJSON_CreateString(indexes[pos + 1])));
    return 0;
}

/* Which rule parts Graph has no place for; NULL if none. */
static const char *
unsupported_part(const struct icalrecurrencetype *r)
{
    if (by_count(r->by_second, ICAL_BY_SECOND_SIZE) > 0)
        return "BYSECOND";
    if (by_count(r->by_minute, ICAL_BY_MINUTE_SIZE) > 0)
        return "BYMINUTE";
    if (by_count(r->by_hour, ICAL_BY_HOUR_SIZE) > 0)
        return "BYHOUR";
    if (by_count(r->by_year_day, ICAL_BY_YEARDAY_SIZE) > 0)
        return "BYYEARDAY";
    if (by_count(r->by_week_no, ICAL_BY_WEEKNO_SIZE) > 0)
        return "BYWEEKNO";
    if (r->rscale != NULL)
        return "RSCALE";
    if (r->freq != ICAL_DAILY_RECURRENCE && r->freq != ICAL_WEEKLY_RECURRENCE &&
        r->freq != ICAL_MONTHLY_RECURRENCE && r->freq != ICAL_YEARLY_RECURRENCE)
        return "FREQ other than DAILY, WEEKLY, MONTHLY or YEARLY";
    return NULL;
}

static int
pattern_of(const struct icalrecurrencetype *r, cJSON *p, struct error *err)
{
    int nday = by_count(r->by_day, ICAL_BY_DAY_SIZE);
    int nmd = by_count(r->by_month_day, ICAL_BY_MONTHDAY_SIZE);
    int nmonth = by_count(r->by_month, ICAL_BY_MONTH_SIZE);
    int nsp = by_count(r->by_set_pos, ICAL_BY_SETPOS_SIZE), plain = 1;

    for (int i = 0; i < nday; i++)
        plain = plain && icalrecurrencetype_day_position(r->by_day[i]) == 0;
    if (r->freq == ICAL_DAILY_RECURRENCE && nday == 0 && nmd + nmonth + nsp == 0) {
        cJSON_AddItemToObject(p, "type", need(cJSON_CreateString("daily")));
        return 0;
    }
    /* "Every weekday" is FREQ=DAILY;BYDAY=MO,...,FR to Google, weekly to Graph. */
    if ((r->freq == ICAL_WEEKLY_RECURRENCE ||
         (r->freq == ICAL_DAILY_RECURRENCE && r->interval == 1)) &&
        nday > 0 && plain && nmd + nmonth + nsp == 0) {
        int ws = r->week_start >= ICAL_SUNDAY_WEEKDAY && r->week_start <= ICAL_SATURDAY_WEEKDAY
                     ? (int)r->week_start - 1
                     : 1;

        cJSON_AddItemToObject(p, "type", need(cJSON_CreateString("weekly")));
        cJSON_AddItemToObject(p, "daysOfWeek", days_json(r));
        cJSON_AddItemToObject(p, "firstDayOfWeek", need(cJSON_CreateString(graph_days[ws])));
        return 0;
    }
    if (r->freq == ICAL_MONTHLY_RECURRENCE && nmonth == 0)
        return month_pattern(r, p, 0, err);
    if (r->freq == ICAL_YEARLY_RECURRENCE && nmonth == 1 && r->by_month[0] >= 1 &&
        r->by_month[0] <= 12) {
        cJSON_AddItemToObject(p, "month", need(cJSON_CreateNumber(r->by_month[0])));
        return month_pattern(r, p, 1, err);
    }
    return error_set(err, ERROR_MAPPING, "no Graph pattern has this combination of parts");
}

static int
range_of(const struct icalrecurrencetype *r, const struct appt_when *start, cJSON *range,
         struct error *err)
{
    char text[APPT_TEXT_MAX];
    int64_t local;

    if (appt_tz_utc_to_local(start->kind == APPT_WHEN_AT ? start->tz : "", start->s, &local, err) !=
            0 ||
        appt_format_date(local, text) != 0)
        return -1;
    cJSON_AddItemToObject(range, "startDate", need(cJSON_CreateString(text)));
    if (start->kind == APPT_WHEN_AT)
        cJSON_AddItemToObject(range, "recurrenceTimeZone",
                              need(cJSON_CreateString(graph_zone_name(start->tz))));
    if (r->count > GRAPH_MAX_COUNT)
        return error_set(err, ERROR_MAPPING, "COUNT above %d", GRAPH_MAX_COUNT);
    if (r->count > 0) {
        cJSON_AddItemToObject(range, "type", need(cJSON_CreateString("numbered")));
        cJSON_AddItemToObject(range, "numberOfOccurrences", need(cJSON_CreateNumber(r->count)));
        return 0;
    }
    if (icaltime_is_null_time(r->until)) {
        cJSON_AddItemToObject(range, "type", need(cJSON_CreateString("noEnd")));
        return 0;
    }
    /* The last day an occurrence may start on, in the series' zone. */
    local = appt_civil(r->until.year, r->until.month, r->until.day, r->until.hour, r->until.minute,
                       r->until.second);
    if (start->kind == APPT_WHEN_AT && !r->until.is_date &&
        appt_tz_utc_to_local(start->tz, local, &local, err) != 0)
        return -1;
    if (appt_format_date(local, text) != 0)
        return error_set(err, ERROR_MAPPING, "UNTIL outside years 0001-3000");
    cJSON_AddItemToObject(range, "type", need(cJSON_CreateString("endDate")));
    cJSON_AddItemToObject(range, "endDate", need(cJSON_CreateString(text)));
    return 0;
}

static int
rrule_to_pattern(const char *rrule, const struct appt_when *start, cJSON **out, struct error *err)
{
    struct icalrecurrencetype r = icalrecurrencetype_from_string(rrule);
    cJSON *rec, *pattern, *range;
    const char *bad;

    icalerror_clear_errno();
    if (r.freq == ICAL_NO_RECURRENCE)
        return error_set(err, ERROR_MAPPING, "\"%.64s\" is not an RRULE", rrule);
    bad = unsupported_part(&r);
    if (bad != NULL)
        return error_set(err, ERROR_MAPPING, "RRULE %.64s: Graph has no %s", rrule, bad);
    rec = need(cJSON_CreateObject());
    pattern = need(cJSON_CreateObject());
    range = need(cJSON_CreateObject());
    cJSON_AddItemToObject(rec, "pattern", pattern);
    cJSON_AddItemToObject(rec, "range", range);
    if (pattern_of(&r, pattern, err) != 0 || range_of(&r, start, range, err) != 0) {
        cJSON_Delete(rec);
        return error_wrap(err, "RRULE %.64s", rrule);
    }
    cJSON_AddItemToObject(pattern, "interval", need(cJSON_CreateNumber(r.interval)));
    *out = rec;
    return 0;
}

/* originalStart of an occurrence: the instant (an all-day one: its date at
 * midnight UTC, as the series is written in UTC). */
static int
original_start(const char *rid, const struct appt_when *start, char out[APPT_TEXT_MAX],
               struct error *err)
{
    struct appt_when w;

    if (appt_when_from_text(rid, start, &w, err) != 0 || appt_format_instant(w.s, out) != 0)
        return error_set(err, ERROR_MAPPING, "occurrence %.40s is not a time", rid);
    return 0;
}

/* What each occurrence needs: deletes for exdates and a full PATCH for each
 * exception, in time order. */
static int
write_instances(const cJSON *appt, const struct appt_when *start, cJSON *list, struct error *err)
{
    const cJSON *ex = get(get(appt, "recurrence"), "exdates");
    const cJSON *exc = get(appt, "exceptions");
    const cJSON *e = ex != NULL ? ex->child : NULL, *x = exc != NULL ? exc->child : NULL;

    while (e != NULL || x != NULL) {
        const char *rid_x = x != NULL ? get_str(x, "recurrence_id") : NULL;
        char orig[APPT_TEXT_MAX];
        cJSON *inst = need(cJSON_CreateObject()), *occ;

        if (e != NULL && (rid_x == NULL || strcmp(e->valuestring, rid_x) < 0)) {
            if (original_start(e->valuestring, start, orig, err) != 0)
                goto fail;
            cJSON_AddItemToObject(inst, "originalStart", need(cJSON_CreateString(orig)));
            cJSON_AddItemToObject(inst, "isCancelled", need(cJSON_CreateTrue()));
            e = e->next;
        } else {
            if (original_start(rid_x, start, orig, err) != 0 ||
                appt_occurrence(appt, x, &occ, err) != 0)
                goto fail;
            cJSON_AddItemToObject(inst, "originalStart", need(cJSON_CreateString(orig)));
            if (write_body(occ, inst, err) != 0) {
                cJSON_Delete(occ);
                goto fail;
            }
            cJSON_Delete(occ);
            x = x->next;
        }
        cJSON_AddItemToArray(list, inst);
        continue;
fail:
        cJSON_Delete(inst);
        return -1;
    }
    return 0;
}

int
appt_to_graph(const cJSON *appt, cJSON **event, cJSON **instances, struct error *err)
{
    cJSON *canon = NULL, *ev = NULL, *list = NULL, *rec = NULL;
    const cJSON *recurrence;
    struct appt_when start = {0};
    int rc = -1;

    if (appt_normalize(appt, &canon, err) != 0)
        return error_wrap(err, "graph event");
    recurrence = get(canon, "recurrence");
    ev = need(cJSON_CreateObject());
    list = need(cJSON_CreateArray());
    if (write_body(canon, ev, err) != 0 ||
        appt_when_get(get(canon, "start"), "start", &start, err) != 0)
        goto out;
    if (recurrence != NULL) {
        if (get(recurrence, "rdates") != NULL) {
            error_set(err, ERROR_MAPPING,
                      "Graph has no RDATE: extra occurrences cannot be written");
            goto out;
        }
        if (get_str(recurrence, "rrule") == NULL) {
            error_set(err, ERROR_MAPPING, "Graph has no series without an RRULE");
            goto out;
        }
        if (rrule_to_pattern(get_str(recurrence, "rrule"), &start, &rec, err) != 0)
            goto out;
        cJSON_AddItemToObject(ev, "recurrence", rec);
        if (write_instances(canon, &start, list, err) != 0)
            goto out;
    }
    *event = ev;
    *instances = list;
    ev = list = NULL;
    rc = 0;
out:
    cJSON_Delete(ev);
    cJSON_Delete(list);
    cJSON_Delete(canon);
    return rc == 0 ? 0 : error_wrap(err, "graph event");
}
