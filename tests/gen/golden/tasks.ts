// Define a custom error type for API errors
export class ApiError extends Error {
  constructor(message: string, public readonly details?: unknown) {
    super(message);
    this.name = 'ApiError';
  }
}

// Parser for the Result-style responses
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function parseResponse<T>(response: any): T {
  try {
    if ('Ok' in response && response.Ok !== undefined && response.Ok !== null) {
      return response.Ok as T;
    }

    if ('Err' in response && response.Err !== undefined) {
      throw new ApiError(`API returned an error`, response.Err);
    }
  } catch (e) {
    return response as T;
  }
  return response as T;
}

/**
 * Generic API request function
 * @param path - API endpoint path
 * @param method - HTTP method (GET, POST, PUT, DELETE, etc.)
 * @param data - Request data
 * @returns Promise with parsed response data
 * @throws ApiError if the request fails or response contains an error
 */
async function apiRequest<T, R>(path: string, method: string, data: T): Promise<R> {
  const BASE_URL = import.meta.env.BASE_URL || window.location.origin;

  const requestOptions: RequestInit = {
    method: method,
    headers: {
      "Content-Type": "application/json",
    },
  };

  // Only add body for methods that support it
  if (method !== 'GET' && method !== 'HEAD') {
    requestOptions.body = JSON.stringify(data);
  }

  const url = path.startsWith('/') ? `${BASE_URL}${path}` : `${BASE_URL}/${path}`;
  const result = await fetch(url, requestOptions);

  if (!result.ok) {
    throw new ApiError(`HTTP request failed with status: ${result.status}`);
  }

  const jsonResponse = await result.json();
  return parseResponse<R>(jsonResponse);
}


// ============= Tasks Hyperapp =============
export namespace Tasks {

  // Custom Types
  export enum Status {
    Open = "Open",
    Done = "Done",
  }

  export interface Item {
    title: string;
    state: Status;
  }


  // API Request/Response Types
  export interface AddItemRequestWrapper {
    AddItem: Item
  }

  export type AddItemResponse = number;


  // API Functions
  /**
   * add_item
   * @param it: Item * @returns Promise with result
   * @throws ApiError if the request fails
   */
  export async function add_item(it: Item): Promise<number> {
    const data: AddItemRequestWrapper = {
      AddItem: it,
    };

    return await apiRequest<AddItemRequestWrapper, number>('/api/add-item', 'POST', data);
  }

}

